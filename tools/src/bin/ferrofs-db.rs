//! ferrofs-db: inspect or patch a ferrofs superblock, keeping its checksum
//! right (tests use it to build images with one specific defect).
//!
//!   ferrofs-db DEVICE|FILE print
//!   ferrofs-db DEVICE|FILE set FIELD VALUE      (FIELD: feature_incompat,
//!       feature_ro_compat, feature_compat, total_blocks, version, state)
use ferrofs_engine::{Superblock, SB_SIZE};
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::exit;

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
        println!("usage: ferrofs-db DEVICE print | set FIELD VALUE");
        println!("Print or patch the primary superblock of a ferrofs, keeping its checksum right.");
        println!("  print               print every superblock field");
        println!("  set FIELD VALUE     set FIELD to VALUE (decimal, or hex with 0x); FIELD is one of");
        println!("                      feature_incompat feature_ro_compat feature_compat total_blocks version state");
        println!("  -h, --help          print this help and exit");
        println!("For building test images: a patched superblock can make the filesystem unmountable.");
        println!("See ferrofs-db(8).");
        return;
    }
    if args.len() < 3 {
        eprintln!("usage: ferrofs-db DEVICE print | set FIELD VALUE");
        exit(8);
    }
    let dev = &args[1];
    let mut f = OpenOptions::new().read(true).write(args[2] == "set").open(dev).unwrap_or_else(|e| {
        eprintln!("ferrofs-db: {dev}: {e}");
        exit(8)
    });
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
        ("set", Some(field), Some(value)) => {
            let v = parse(value);
            match field.as_str() {
                "feature_incompat" => sb.incompat = v,
                "feature_ro_compat" => sb.ro_compat = v,
                "feature_compat" => sb.compat = v,
                "total_blocks" => sb.total_blocks = v,
                "version" => sb.version = v as u32,
                "state" => sb.state = v as u32,
                other => {
                    eprintln!("ferrofs-db: unknown field {other}");
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
            eprintln!("usage: ferrofs-db DEVICE print | set FIELD VALUE");
            exit(8)
        }
    }
}
