//! mkfs.ferrofs: write a new ferrofs onto a pmem device or an image file.

use ferrofs_engine::{Fs, FormatOptions, Time, BLOCK_SIZE, DEFAULT_JOURNAL_SLOTS, SB_MAGIC};
use ferrofs_tools::{parse_size, FileMedia};
use std::io::Read;
use std::process::exit;

fn usage() -> ! {
    eprintln!("usage: mkfs.ferrofs [-f] [-q] [-L label] [-b 4096] [-s SIZE[k|m|g]] [-J slots] [-d su=SIZE,sw=N] DEVICE|FILE");
    exit(1)
}

/// `--help`: the options, as mkfs.ferrofs(8) describes them.
fn help() -> ! {
    println!("usage: mkfs.ferrofs [-f] [-q] [-L label] [-b 4096] [-s SIZE[k|m|g|t]] [-J slots] [-d su=SIZE,sw=N] DEVICE|FILE");
    println!("Write a new ferrofs onto a pmem device in fsdax mode or onto an image file.");
    println!("  -f          overwrite an existing filesystem or partition table signature");
    println!("  -q          quiet: print nothing on success");
    println!("  -L label    filesystem label, at most 32 bytes");
    println!("  -b 4096     block size; 4096 is the only one (size=4096 is accepted too)");
    println!("  -s SIZE     filesystem size instead of the whole device (suffix k, m, g or t)");
    println!(
        "  -J slots    undo journal slots, {} to {} (default {})",
        ferrofs_engine::MIN_JOURNAL_SLOTS,
        ferrofs_engine::MAX_JOURNAL_SLOTS,
        DEFAULT_JOURNAL_SLOTS
    );
    println!("  -d su=SIZE,sw=N");
    println!("              stripe geometry: allocations of at least SIZE (a multiple of 4096,");
    println!("              suffix k, m or g) start on a multiple of it; the stripe is N units wide");
    println!("  -h, --help  print this help and exit");
    println!("See mkfs.ferrofs(8).");
    exit(0)
}

#[path = "../blkid.rs"]
mod blkid;

/// What `dev` already holds that mkfs would destroy: ferrofs (which libblkid
/// does not know) by our own magic, everything else by libblkid.
fn existing_signature(dev: &str, m: &FileMedia) -> Result<Option<String>, String> {
    use ferrofs_engine::Media;
    let mut b = [0u8; 8];
    if m.size() >= 8 && m.read(0, &mut b).is_ok() && u64::from_le_bytes(b) == SB_MAGIC {
        return Ok(Some("an existing ferrofs filesystem".into()));
    }
    Ok(blkid::probe(dev)?.map(|s| match s {
        blkid::Signature::Filesystem(t) => format!("an existing {t} filesystem"),
        blkid::Signature::PartitionTable(t) => format!("a partition table ({t})"),
        blkid::Signature::Unknown => "a signature libblkid could not name".into(),
    }))
}

/// `-d su=SIZE,sw=N` (XFS's spelling; sw defaults to 1): the stripe unit
/// and width in blocks.
fn parse_stripe(v: &str) -> Result<(u64, u64), String> {
    let (mut su, mut sw) = (None, None);
    for opt in v.split(',') {
        match opt.split_once('=') {
            Some(("su", n)) => {
                let b = parse_size(n).ok_or_else(|| format!("bad stripe unit '{n}'"))?;
                if b == 0 || b % BLOCK_SIZE != 0 {
                    return Err(format!("stripe unit su={n} is not a whole number of {BLOCK_SIZE}-byte blocks"));
                }
                su = Some(b / BLOCK_SIZE);
            }
            Some(("sw", n)) => match n.parse::<u64>() {
                Ok(w) if w >= 1 => sw = Some(w),
                _ => return Err(format!("bad stripe width sw={n}: a number of stripe units, at least 1")),
            },
            _ => return Err(format!("unknown data option '{opt}' (-d takes su=SIZE,sw=N)")),
        }
    }
    let su = su.ok_or("-d sw= needs a stripe unit su= too")?;
    let width = su.checked_mul(sw.unwrap_or(1)).filter(|&w| w <= u32::MAX as u64);
    Ok((su, width.ok_or_else(|| format!("stripe width of {} units of {su} blocks is too large", sw.unwrap_or(1)))?))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut force, mut quiet) = (false, false);
    let mut label = String::new();
    let mut size: Option<u64> = None;
    let mut slots = DEFAULT_JOURNAL_SLOTS;
    let mut stripe = (0, 0);
    let mut dev: Option<String> = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let mut val = || {
            i += 1;
            args.get(i).cloned().unwrap_or_else(|| usage())
        };
        match a {
            "-f" => force = true,
            "-q" => quiet = true,
            "-L" => label = val(),
            "-b" => {
                let v = val();
                let n = v.strip_prefix("size=").unwrap_or(&v);
                if parse_size(n) != Some(BLOCK_SIZE) {
                    eprintln!("mkfs.ferrofs: block size must be 4096 (got {v})");
                    exit(1);
                }
            }
            "-s" => {
                let v = val();
                size = Some(parse_size(&v).unwrap_or_else(|| {
                    eprintln!("mkfs.ferrofs: bad size '{v}'");
                    exit(1)
                }));
            }
            "-J" => {
                let v = val();
                slots = v.parse().unwrap_or_else(|_| usage());
            }
            "-d" => {
                let v = val();
                stripe = parse_stripe(&v).unwrap_or_else(|e| {
                    eprintln!("mkfs.ferrofs: {e}");
                    exit(1)
                });
            }
            "-h" | "--help" => help(),
            _ if a.starts_with('-') => usage(),
            _ => {
                if dev.is_some() {
                    usage();
                }
                dev = Some(a.to_string());
            }
        }
        i += 1;
    }
    let dev = dev.unwrap_or_else(|| usage());
    if label.len() > 32 {
        eprintln!("mkfs.ferrofs: label '{label}' is longer than 32 bytes");
        exit(1);
    }
    let m = FileMedia::open(&dev, true).unwrap_or_else(|e| {
        eprintln!("mkfs.ferrofs: {e}");
        exit(1)
    });
    if !force {
        match existing_signature(&dev, &m) {
            Ok(None) => {}
            Ok(Some(what)) => {
                eprintln!("mkfs.ferrofs: {dev} appears to contain {what}; use -f to overwrite");
                exit(1);
            }
            Err(e) => {
                eprintln!("mkfs.ferrofs: {e}; use -f to overwrite without checking");
                exit(1);
            }
        }
    }
    let msize = ferrofs_engine::Media::size(&m);
    let size_bytes = size.unwrap_or(msize) / BLOCK_SIZE * BLOCK_SIZE;
    if size_bytes > msize {
        eprintln!("mkfs.ferrofs: {dev}: requested size {size_bytes} bytes is larger than the device ({msize} bytes)");
        exit(1);
    }
    let mut uuid = [0u8; 16];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut uuid)).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        uuid.copy_from_slice(&t.to_le_bytes());
    }
    uuid[6] = (uuid[6] & 0x0f) | 0x40;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let big = size_bytes >= 64 << 30;
    if big && !quiet {
        eprintln!("mkfs.ferrofs: formatting {} GiB on {dev} ...", size_bytes >> 30);
    }
    let total = size_bytes / BLOCK_SIZE;
    let data = ferrofs_engine::Geometry::compute(total, slots).map_or(total, |g| total - g.data_start);
    if !ferrofs_engine::stripe_ok(stripe.0, stripe.1, data) {
        eprintln!(
            "mkfs.ferrofs: {dev}: stripe width of {} blocks is wider than the {data} blocks of data space",
            stripe.1
        );
        exit(1);
    }
    let opts = FormatOptions {
        label: label.as_bytes(),
        uuid,
        size_bytes,
        time: Time { sec: now as i64, nsec: 0 },
        journal_slots: slots,
        stripe,
    };
    if let Err(e) = Fs::format(&m, &opts) {
        eprintln!("mkfs.ferrofs: {dev}: cannot format: {e:?} (errno {})", e.errno());
        exit(1);
    }
    if let Err(e) = m.sync() {
        eprintln!("mkfs.ferrofs: {e}");
        exit(1);
    }
    if !quiet {
        let fs = match Fs::mount(&m, &ferrofs_engine::MountOptions { read_only: true, time: now as i64 }) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("mkfs.ferrofs: {dev}: verification mount failed: {e:?}");
                exit(1);
            }
        };
        let g = fs.geometry();
        let u = uuid.iter().map(|b| format!("{b:02x}")).collect::<String>();
        println!("ferrofs on {dev}: label '{label}' uuid {}-{}-{}-{}-{}", &u[..8], &u[8..12], &u[12..16], &u[16..20], &u[20..]);
        println!("  block size {BLOCK_SIZE}, {} blocks ({} MiB)", g.total_blocks, (g.total_blocks * BLOCK_SIZE) >> 20);
        println!(
            "  journal: blocks {}..{} ({} undo slots)",
            g.journal_start,
            g.journal_start + g.journal_blocks - 1,
            g.journal_slots
        );
        println!("  bitmap: blocks {}..{}", g.bitmap_start, g.bitmap_start + g.bitmap_blocks - 1);
        println!("  data: blocks {}..{}, backup superblock at {}", g.data_start, g.backup_sb - 1, g.backup_sb);
        let (su, sw) = fs.stripe();
        if su != 0 {
            println!("  stripe: unit {su} blocks ({} KiB), width {sw} blocks ({} units)", su * BLOCK_SIZE >> 10, sw / su);
        }
        println!("  free blocks {}", fs.statfs().free_blocks);
    }
}
