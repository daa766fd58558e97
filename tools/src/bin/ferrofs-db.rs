//! ferrofs-db: inspect or patch a ferrofs superblock, keeping its checksum
//! right (tests use it to build images with one specific defect).
//!
//!   ferrofs-db DEVICE|FILE print
//!   ferrofs-db DEVICE|FILE get FIELD
//!   ferrofs-db DEVICE|FILE set FIELD VALUE      (FIELD: feature_incompat,
//!       feature_ro_compat, feature_compat, total_blocks, version, state,
//!       stripe_unit, stripe_width)
//!
//! `get state` is what xfstests' log-state probe reads (tests/xfstests/
//! prepare-tree): 1 after a clean unmount, 2 while mounted or after a crash
//! or shutdown, when the next mount recovers.
use ferrofs_engine::{Superblock, SB_SIZE};
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::process::exit;

const USAGE: &str = "usage: ferrofs-db DEVICE print | get FIELD | set FIELD VALUE";
const FIELDS: [&str; 8] =
    ["feature_incompat", "feature_ro_compat", "feature_compat", "total_blocks", "version", "state", "stripe_unit", "stripe_width"];

extern "C" {
    fn posix_fadvise(fd: i32, offset: i64, len: i64, advice: i32) -> i32;
}
const POSIX_FADV_DONTNEED: i32 = 4;

/// The superblock field named `name`, as a number.
fn field(sb: &Superblock, name: &str) -> Option<u64> {
    Some(match name {
        "feature_incompat" => sb.incompat,
        "feature_ro_compat" => sb.ro_compat,
        "feature_compat" => sb.compat,
        "total_blocks" => sb.total_blocks,
        "version" => sb.version as u64,
        "state" => sb.state as u64,
        "stripe_unit" => sb.stripe_unit as u64,
        "stripe_width" => sb.stripe_width as u64,
        _ => return None,
    })
}

fn parse(v: &str) -> u64 {
    let r = match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => v.parse(),
    };
    r.unwrap_or_else(|_| {
        eprintln!("ferrofs-db: bad number {v}");
        exit(8)
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if matches!(args.get(1).map(String::as_str), Some("-h" | "--help")) {
        println!("{USAGE}");
        println!("Print or patch the primary superblock of a ferrofs, keeping its checksum right.");
        println!("  print               print every superblock field");
        println!("  get FIELD           print FIELD's value in decimal (state: 1 clean, 2 dirty)");
        println!("  set FIELD VALUE     set FIELD to VALUE (decimal, or hex with 0x)");
        println!("FIELD is one of {}", FIELDS.join(" "));
        println!("  -h, --help          print this help and exit");
        println!("For building test images: a patched superblock can make the filesystem unmountable.");
        println!("See ferrofs-db(8).");
        return;
    }
    if args.len() < 3 {
        eprintln!("{USAGE}");
        exit(8);
    }
    let dev = &args[1];
    let mut f = OpenOptions::new().read(true).write(args[2] == "set").open(dev).unwrap_or_else(|e| {
        eprintln!("ferrofs-db: {dev}: {e}");
        exit(8)
    });
    // A mounted (or just unmounted) ferrofs writes its superblock through
    // DAX, never through the block device's page cache: drop what an
    // earlier reader (mkfs, blkid) left cached there, or we would read it.
    // SAFETY: plain syscall on an open descriptor; it only drops clean
    // cached pages.
    unsafe { posix_fadvise(f.as_raw_fd(), 0, 0, POSIX_FADV_DONTNEED) };
    let mut b = [0u8; SB_SIZE];
    if let Err(e) = f.read_exact(&mut b) {
        eprintln!("ferrofs-db: {dev}: reading the superblock: {e}");
        exit(8);
    }
    let mut sb = Superblock::decode(&b, 0).unwrap_or_else(|e| {
        eprintln!("ferrofs-db: {dev}: superblock does not verify: {e:?}");
        exit(4)
    });
    match (args[2].as_str(), args.get(3), args.get(4)) {
        ("print", None, None) => println!("{sb:#?}"),
        ("get", Some(name), None) => match field(&sb, name) {
            Some(v) => println!("{v}"),
            None => {
                eprintln!("ferrofs-db: unknown field {name} (one of {})", FIELDS.join(" "));
                exit(8)
            }
        },
        ("set", Some(field), Some(value)) => {
            let v = parse(value);
            match field.as_str() {
                "feature_incompat" => sb.incompat = v,
                "feature_ro_compat" => sb.ro_compat = v,
                "feature_compat" => sb.compat = v,
                "total_blocks" => sb.total_blocks = v,
                "version" => sb.version = v as u32,
                "state" => sb.state = v as u32,
                "stripe_unit" => sb.stripe_unit = v as u32,
                "stripe_width" => sb.stripe_width = v as u32,
                other => {
                    eprintln!("ferrofs-db: unknown field {other} (one of {})", FIELDS.join(" "));
                    exit(8)
                }
            }
            sb.encode(&mut b);
            let r = f.seek(SeekFrom::Start(0)).and_then(|_| f.write_all(&b)).and_then(|_| f.sync_all());
            if let Err(e) = r {
                eprintln!("ferrofs-db: {dev}: writing the superblock: {e}");
                exit(8);
            }
        }
        _ => {
            eprintln!("{USAGE}");
            exit(8)
        }
    }
}
