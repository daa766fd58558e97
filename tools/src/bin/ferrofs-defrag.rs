//! ferrofs-defrag: online defragmentation of files on a mounted ferrofs.
//!
//!   ferrofs-defrag [-v] [-n] FILE...
//!
//! For each regular file: its extent count (FIEMAP), then, unless `-n`,
//! FERROFS_IOC_DEFRAG over the whole file, then the count again. The kernel
//! moves each fragmented run of extents (adjacent in the file, no hole, all
//! written or all unwritten, not shared) into one free run, in bounded
//! crash-safe steps; data, size, times and block count do not change, shared
//! extents stay shared. See ferrofs-defrag(8).
//!
//! Exit status: 0 if every file was handled, 1 if one could not be (its
//! error is printed), 2 on a usage error.
use std::fs::{File, OpenOptions};
use std::process::exit;

#[path = "../uapi.rs"]
mod uapi;

const USAGE: &str = "usage: ferrofs-defrag [-v] [-n] FILE...
Defragment files on a mounted ferrofs (each must be open for writing).
  -v          print extents before and after, and bytes moved, per file
  -n          only print each file's extent count; change nothing
  -h, --help  print this help and exit
See ferrofs-defrag(8).";

fn one(path: &str, verbose: bool, dry: bool) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{path}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{path}: not a regular file"));
    }
    let f: File = if dry { File::open(path) } else { OpenOptions::new().read(true).write(true).open(path) }
        .map_err(|e| format!("{path}: {e}"))?;
    if uapi::fs_type(&f).map_err(|e| format!("{path}: statfs: {e}"))? != uapi::FERROFS_MAGIC {
        return Err(format!("{path}: not on a ferrofs"));
    }
    let before = uapi::extents(&f).map_err(|e| format!("{path}: FIEMAP: {e}"))?.len();
    if dry {
        println!("{path}: {before} extents");
        return Ok(());
    }
    let r = uapi::defrag(&f, 0, 0).map_err(|e| format!("{path}: FERROFS_IOC_DEFRAG: {e}"))?;
    if verbose {
        let after = uapi::extents(&f).map_err(|e| format!("{path}: FIEMAP: {e}"))?.len();
        let mut line = format!("{path}: {before} extents before, {after} after, {} bytes moved", r.moved);
        if r.no_space > 0 {
            line += &format!(", {} runs left fragmented (no contiguous free space)", r.no_space);
        }
        println!("{line}");
    }
    Ok(())
}

fn main() {
    let (mut verbose, mut dry, mut files) = (false, false, Vec::new());
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "-v" => verbose = true,
            "-n" => dry = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                exit(0);
            }
            s if s.starts_with('-') && s.len() > 1 => {
                eprintln!("ferrofs-defrag: unknown option {s}\n{USAGE}");
                exit(2);
            }
            _ => files.push(a),
        }
    }
    if files.is_empty() {
        eprintln!("{USAGE}");
        exit(2);
    }
    let mut rc = 0;
    for p in &files {
        if let Err(e) = one(p, verbose, dry) {
            eprintln!("ferrofs-defrag: {e}");
            rc = 1;
        }
    }
    exit(rc);
}
