//! fsck.ferrofs: check (and with -y repair) a ferrofs.
//! Exit codes per fsck(8): 0 clean, 1 errors corrected, 4 errors left
//! uncorrected, 8 operational error.

use ferrofs_tools::fsck::{fsck, FsckOptions};
use ferrofs_tools::FileMedia;
use std::process::exit;

fn usage() -> ! {
    eprintln!("usage: fsck.ferrofs [-n] [-y] [-f] DEVICE|FILE");
    exit(8)
}

/// `--help`: the options, as fsck.ferrofs(8) describes them.
fn help() -> ! {
    println!("usage: fsck.ferrofs [-n] [-y] [-f] DEVICE|FILE");
    println!("Check a ferrofs and, with -y, repair it.");
    println!("  -n          check only; never write to the device");
    println!("  -y          repair every problem found (-p and -a, from fsck(8), do the same)");
    println!("  -f          accepted for fsck(8); every check is a full one");
    println!("  -h, --help  print this help and exit");
    println!("Exit status: 0 clean, 1 errors corrected, 4 errors left uncorrected, 8 operational error.");
    println!("See fsck.ferrofs(8).");
    exit(0)
}

fn main() {
    let (mut repair, mut no) = (false, false);
    let mut dev = None;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "-n" => no = true,
            "-y" | "-p" | "-a" => repair = true,
            "-f" => {}
            "-h" | "--help" => help(),
            s if s.starts_with('-') => usage(),
            s => {
                if dev.replace(s.to_string()).is_some() {
                    usage();
                }
            }
        }
    }
    if no && repair {
        eprintln!("fsck.ferrofs: -n and -y are mutually exclusive");
        exit(8);
    }
    let dev = dev.unwrap_or_else(|| usage());
    let m = match FileMedia::open(&dev, repair) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("fsck.ferrofs: {e}");
            exit(8);
        }
    };
    let r = fsck(&m, FsckOptions { repair });
    for p in &r.problems {
        println!("{}: block {}: {}{}", p.what, p.block, p.msg, if p.fixed { " [fixed]" } else { "" });
    }
    if repair {
        if let Err(e) = m.sync() {
            eprintln!("fsck.ferrofs: {e}");
            exit(8);
        }
    }
    let verdict = match r.exit_code {
        0 => "clean",
        1 => "errors corrected",
        4 => "errors left uncorrected",
        _ => "operational error",
    };
    println!("{dev}: {verdict}: {} inodes, {} data blocks in use", r.inodes, r.used_blocks);
    if r.bad_blocks > 0 {
        println!("{dev}: {} blocks quarantined after memory failures (never reallocated)", r.bad_blocks);
        // which files lost data there (what `ferrofs-du --damaged` prints)
        match ferrofs_tools::damage::report(&m) {
            Ok(d) => d.iter().flat_map(|x| x.lines()).for_each(|l| println!("{dev}: {l}")),
            Err(e) => println!("{dev}: cannot list the damaged files: {e}"),
        }
    }
    exit(r.exit_code);
}
