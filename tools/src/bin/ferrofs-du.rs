//! ferrofs-du: shared and exclusive space per file, from FIEMAP.
//!
//!   ferrofs-du [-H] PATH...
//!   ferrofs-du --damaged DEVICE|IMAGE
//!
//! For every regular file under the PATHs: bytes in extents shared with
//! other files (FIEMAP_EXTENT_SHARED, i.e. reflinked or deduplicated) and
//! bytes it owns alone; then totals, and the space the whole set really
//! occupies (the union of physical ranges), which `du` cannot tell.
//! Works on any filesystem with FIEMAP and shared-extent flags.
//!
//! `--damaged` reads a ferrofs device (mounted or not) or image through the
//! engine, read-only, and lists every block quarantined after a memory
//! failure with each file that owns it: path, byte range, and whether other
//! files share it. Exit status 0 if nothing is damaged, 1 if something is,
//! 2 if the device cannot be read.
use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::exit;

#[path = "../uapi.rs"]
mod uapi;
use uapi::extents;

extern "C" {
    fn posix_fadvise(fd: i32, offset: i64, len: i64, advice: i32) -> i32;
}
const POSIX_FADV_DONTNEED: i32 = 4;

/// `--damaged DEV`: the damaged-files report.
fn damaged(dev: &str) -> ! {
    // A mounted ferrofs writes its metadata through DAX, never through the
    // block device's page cache: drop what an earlier reader left cached
    // there, or we would read stale metadata.
    if let Ok(f) = File::open(dev) {
        // SAFETY: plain syscall on an open descriptor; it only drops clean
        // cached pages.
        unsafe { posix_fadvise(f.as_raw_fd(), 0, 0, POSIX_FADV_DONTNEED) };
    }
    let m = match ferrofs_tools::FileMedia::open(dev, false) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("ferrofs-du: {e}");
            exit(2);
        }
    };
    match ferrofs_tools::damage::report(&m) {
        Ok(d) if d.is_empty() => {
            println!("{dev}: no damaged blocks");
            exit(0);
        }
        Ok(d) => {
            for l in d.iter().flat_map(|x| x.lines()) {
                println!("{l}");
            }
            let files: std::collections::BTreeSet<u64> = d.iter().flat_map(|x| x.files.iter().map(|f| f.ino)).collect();
            let blocks: u64 = d.iter().map(|x| x.count).sum();
            println!("{dev}: {blocks} blocks quarantined, {} files damaged", files.len());
            exit(1);
        }
        Err(e) => {
            eprintln!("ferrofs-du: {dev}: {e}");
            exit(2);
        }
    }
}

fn walk(p: &Path, files: &mut Vec<PathBuf>) {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => match std::fs::read_dir(p) {
            Ok(rd) => {
                let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
                v.sort();
                for c in v {
                    walk(&c, files);
                }
            }
            Err(e) => eprintln!("ferrofs-du: {}: {e}", p.display()),
        },
        Ok(m) if m.is_file() => files.push(p.to_path_buf()),
        Ok(_) => {}
        Err(e) => eprintln!("ferrofs-du: {}: {e}", p.display()),
    }
}

fn human(b: u64, on: bool) -> String {
    if !on {
        return b.to_string();
    }
    let units = ["B", "K", "M", "G", "T"];
    let (mut v, mut u) = (b as f64, 0);
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{b}B") } else { format!("{v:.1}{}", units[u]) }
}

fn main() {
    let mut h = false;
    let mut paths = Vec::new();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--damaged") {
        match &args[1..] {
            [dev] => damaged(dev),
            _ => {
                eprintln!("usage: ferrofs-du --damaged DEVICE|IMAGE");
                exit(2);
            }
        }
    }
    for a in args {
        match a.as_str() {
            "-H" => h = true,
            "-h" | "--help" => {
                println!("usage: ferrofs-du [-H] PATH...");
                println!("       ferrofs-du --damaged DEVICE|IMAGE");
                println!("Shared and exclusive bytes of every regular file under the PATHs (FIEMAP),");
                println!("the totals, and the space the whole set occupies on the media.");
                println!("  -H          sizes in powers of 1024 with a unit (B, K, M, G, T)");
                println!("  --damaged   list every quarantined block of an unmounted or mounted");
                println!("              filesystem with each owning file's path and byte range");
                println!("  -h, --help  print this help and exit");
                println!("See ferrofs-du(1).");
                return;
            }
            _ => paths.push(PathBuf::from(a)),
        }
    }
    if paths.is_empty() {
        eprintln!("usage: ferrofs-du [-H] PATH...");
        exit(2);
    }
    let mut files = Vec::new();
    for p in &paths {
        walk(p, &mut files);
    }
    let mut errors = 0;
    let (mut tsh, mut tex) = (0u64, 0u64);
    let mut ranges: BTreeMap<u64, u64> = BTreeMap::new(); // physical start -> end
    println!("{:>12} {:>12} {:>12}  path", "shared", "exclusive", "total");
    for f in &files {
        let ex = File::open(f).and_then(|fd| extents(&fd));
        let ex = match ex {
            Ok(e) => e,
            Err(e) => {
                eprintln!("ferrofs-du: {}: {e}", f.display());
                errors += 1;
                continue;
            }
        };
        let (mut sh, mut own) = (0u64, 0u64);
        for (p, l, s) in ex {
            if s { sh += l } else { own += l }
            let end = ranges.entry(p).or_insert(p + l);
            *end = (*end).max(p + l);
        }
        tsh += sh;
        tex += own;
        println!("{:>12} {:>12} {:>12}  {}", human(sh, h), human(own, h), human(sh + own, h), f.display());
    }
    // union of physical ranges: what the set of files really occupies
    let (mut used, mut cur_end) = (0u64, 0u64);
    for (&s, &e) in &ranges {
        let s = s.max(cur_end);
        if e > s {
            used += e - s;
        }
        cur_end = cur_end.max(e);
    }
    println!("{:>12} {:>12} {:>12}  total ({} files)", human(tsh, h), human(tex, h), human(tsh + tex, h), files.len());
    println!("{:>38}  on media (shared extents counted once)", human(used, h));
    if errors > 0 {
        exit(1);
    }
}
