//! A deterministic bit-flip fuzzer of the engine's mount/parse paths and of
//! fsck: each seed flips 1..8 random bits (or bytes) in the metadata blocks of
//! a populated image, sometimes recomputing the block's crc so that the
//! damage reaches the content checks, then mounts it, walks everything,
//! runs mutating operations, unmounts, and runs fsck -n, fsck -y and fsck -n
//! again. Errors are fine; a panic (index out of range, arithmetic overflow:
//! the test profile has overflow checks, like the kernel's
//! CONFIG_RUST_OVERFLOW_CHECKS, where a panic is a BUG) fails the test and
//! prints the seed. Inputs that once crashed live in `fuzz-corpus/` as
//! "offset xor" lines and are replayed by `fuzz_corpus_regressions`.
//!
//! FERROFS_FUZZ_ITERS (default 150) and FERROFS_FUZZ_SEED (default 1) set
//! the run; `make stress` runs many more seeds.

use ferrofs_engine::*;
use ferrofs_tools::fsck::{fsck, FsckOptions};
use ferrofs_tools::harness;
use ferrofs_tools::{rng::Rng, SimPmem};
use std::panic::{catch_unwind, AssertUnwindSafe};

const T: Time = Time { sec: 9, nsec: 0 };

struct Base {
    img: Vec<u8>,
    meta: Vec<u64>,
}

fn populated() -> Base {
    let pm = SimPmem::new(6 << 20);
    let o = FormatOptions { label: b"fuzz", uuid: [9; 16], size_bytes: 0, time: T, journal_slots: 48, stripe: (0, 0) };
    Fs::format(&pm, &o).unwrap();
    let mut fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
    let reg = NewInode { mode: S_IFREG | 0o644, time: T, ..Default::default() };
    let (f, _) = fs.create(ROOT_INO, b"f", &reg).unwrap();
    for l in 0..150u64 {
        harness::write(&mut fs, f, l * 2 * BLOCK_SIZE, &[l as u8; 64], T).unwrap();
    }
    let (g, _) = fs.create(ROOT_INO, b"g", &reg).unwrap();
    fs.reflink(f, 0, g, 0, 60).unwrap();
    fs.set_size(g, 60 * BLOCK_SIZE, T).unwrap();
    for i in 0..20 {
        let (d, _) = fs.mkdir(ROOT_INO, format!("d{i}").as_bytes(), &NewInode { mode: S_IFDIR | 0o755, time: T, ..Default::default() }).unwrap();
        fs.create(d, b"x", &reg).unwrap();
    }
    for i in 0..9 {
        fs.xattr_set(f, 1, format!("user.k{i}").as_bytes(), &[i as u8; 50], XattrMode::Any).unwrap();
    }
    fs.xattr_set(g, 1, b"user.ext", &vec![5u8; 5000], XattrMode::Any).unwrap();
    fs.symlink(ROOT_INO, b"l", &vec![b'y'; 300], &NewInode { mode: S_IFLNK | 0o777, time: T, ..Default::default() }).unwrap();
    fs.tmpfile(ROOT_INO, &reg).unwrap();
    let total = fs.superblock().total_blocks;
    fs.quarantine(total - 4, 1).unwrap();
    let geo = fs.geometry();
    let mut meta = vec![0, geo.journal_start, geo.journal_start + 1, geo.bitmap_start];
    let img = fs.into_media().snapshot();
    // every btree node: scan for the node magic
    for b in geo.data_start..geo.backup_sb {
        let o = (b * BLOCK_SIZE) as usize;
        if img[o..o + 8] == BT_MAGIC.to_le_bytes() {
            meta.push(b);
        }
    }
    Base { img, meta }
}

fn fix_crc(img: &mut [u8], blk: u64) {
    let o = (blk * BLOCK_SIZE) as usize;
    img[o + 8..o + 12].fill(0);
    let c = crc32c(&img[o..o + BLOCK_SIZE as usize]);
    img[o + 8..o + 12].copy_from_slice(&c.to_le_bytes());
}

/// The damage of one seed: (offset, xor) pairs, then whether the crc of the
/// damaged block was recomputed.
fn damage(base: &Base, seed: u64) -> (Vec<(u64, u8)>, Option<u64>) {
    let mut r = Rng::new(seed);
    let b = base.meta[r.below(base.meta.len() as u64) as usize];
    let mut flips = Vec::new();
    let n = 1 + r.below(8);
    for _ in 0..n {
        // header and first entries are the most interesting bytes
        let off = if r.one_in(2) { r.below(256) } else { r.below(BLOCK_SIZE) };
        let x = if r.one_in(3) { (r.below(255) + 1) as u8 } else { 1 << r.below(8) };
        flips.push((b * BLOCK_SIZE + off, x));
    }
    let fix = (b >= 2 && r.below(3) != 0).then_some(b);
    (flips, fix)
}

/// Read everything reachable with bounded memory and time (sizes, counts and
/// directory structure may all be lies): inodes, entries, the first extents
/// of every file and a block of data from each, symlinks, xattrs.
fn walk<M: Media>(fs: &Fs<M>) -> Result<()> {
    let mut stack = vec![(fs.root_ino(), 0u32)];
    let mut visited = 0;
    let mut first_err = Ok(());
    let mut buf = vec![0u8; XATTR_VALUE_MAX];
    while let Some((ino, depth)) = stack.pop() {
        visited += 1;
        if visited > 2000 {
            break;
        }
        let step = (|| -> Result<()> {
            let i = fs.read_inode(ino)?;
            if i.is_reg() {
                let mut n = 0;
                let mut l = 0;
                while l < i.size.div_ceil(BLOCK_SIZE).min(1 << 20) && n < 64 {
                    let m = fs.map(ino, l, 1 << 20)?;
                    if m.kind == MapKind::Written {
                        fs.media().read(m.pblk * BLOCK_SIZE, &mut buf[..BLOCK_SIZE as usize]).map_err(|e| Error::Io { block: e.offset / BLOCK_SIZE })?;
                    }
                    l += m.count.max(1);
                    n += 1;
                }
            } else if i.is_symlink() {
                fs.read_link(ino, &mut buf[..4096])?;
            }
            let mut xs = Vec::new();
            fs.xattr_list(ino, &mut |ns, name, _| {
                if xs.len() < 100 {
                    xs.push((ns, name.to_vec()))
                }
            })?;
            for (ns, name) in xs {
                fs.xattr_get(ino, ns, &name, &mut buf)?;
            }
            if i.is_dir() && depth < 8 {
                let mut kids = Vec::new();
                fs.readdir(ino, 2, &mut |_, child, _, _| {
                    kids.push(child);
                    kids.len() < 500
                })?;
                stack.extend(kids.into_iter().map(|k| (k, depth + 1)));
            }
            Ok(())
        })();
        if first_err.is_ok() {
            first_err = step;
        }
    }
    first_err
}

/// Mount, walk, mutate, unmount, fsck: must not panic. Returns a short
/// outcome for the statistics.
fn exercise(img: Vec<u8>) -> &'static str {
    exercise_file(img, b"f")
}

/// `exercise`, with `fname` as the root's file to reflink from, write into,
/// punch and truncate.
fn exercise_file(img: Vec<u8>, fname: &[u8]) -> &'static str {
    let pm = SimPmem::from_image(img, false);
    let outcome = match Fs::mount(&pm, &MountOptions { read_only: false, time: 10 }) {
        Err(_) => "mount refused",
        Ok(mut fs) => {
            let det = std::cell::Cell::new(false);
            // an error result; a Corrupt or Io one also counts as the damage found
            let err = |r: std::result::Result<(), Error>| -> bool {
                if matches!(r, Err(Error::Corrupt { .. } | Error::Io { .. })) {
                    det.set(true);
                }
                r.is_err()
            };
            // as the kernel's mount: a root inode that is not there is
            // damage (fill_super returns EUCLEAN)
            if matches!(fs.read_inode(fs.root_ino()), Err(Error::NotFound)) {
                det.set(true);
            }
            let walked = !err(walk(&fs));
            let reg = NewInode { mode: S_IFREG | 0o644, time: T, ..Default::default() };
            let mut failed = !walked;
            let created = fs.create(ROOT_INO, b"new", &reg);
            failed |= err(created.map(drop));
            if let Ok((n, _)) = created {
                failed |= err(harness::write(&mut fs, n, 0, &[1u8; 9000], T).map(drop));
                if let Ok(Some(f)) = fs.lookup(ROOT_INO, fname) {
                    failed |= err(fs.reflink(f, 0, n, 4, 30).map(drop));
                    failed |= err(harness::write(&mut fs, f, 5 * BLOCK_SIZE, &[2u8; 5000], T).map(drop));
                    failed |= err(fs.punch(f, 10, 40).map(drop));
                    failed |= err(harness::truncate(&mut fs, f, 3 * BLOCK_SIZE + 7, T).map(drop));
                    failed |= err(fs.xattr_set(f, 1, b"user.new", &[7u8; 3000], XattrMode::Any).map(drop));
                    failed |= err(fs.xattr_remove(f, 1, b"user.k3").map(drop));
                }
                failed |= err(fs.rename(ROOT_INO, b"new", ROOT_INO, b"g", RenameFlags::default(), T).map(drop));
            }
            // remove everything reachable from the root
            if let Ok(list) = harness::list_dir(&fs, ROOT_INO) {
                for (name, ino, dt) in list {
                    if dt == 4 {
                        if let Ok(sub) = harness::list_dir(&fs, ino) {
                            for (sn, _, _) in sub {
                                let _ = fs.unlink(ino, &sn, T).map(|i| fs.evict(i));
                            }
                        }
                        failed |= err(fs.rmdir(ROOT_INO, &name, T).map(|i| fs.evict(i)).map(drop));
                    } else {
                        failed |= err(fs.unlink(ROOT_INO, &name, T).map(|i| fs.evict(i)).map(drop));
                    }
                }
            }
            let _ = fs.unmount(11);
            if det.get() {
                "mounted, damage found"
            } else if failed {
                "mounted, an operation failed"
            } else {
                "mounted, everything worked"
            }
        }
    };
    let r1 = fsck(&pm, FsckOptions::default());
    let r2 = fsck(&pm, FsckOptions { repair: true });
    let r3 = fsck(&pm, FsckOptions::default());
    // -y may leave what it cannot fix (exit 4), but it must not make a
    // filesystem it called repaired fail the next check
    if r2.exit_code == 1 && r3.exit_code != 0 && r1.exit_code != 0 {
        eprintln!("note: fsck -y reported repairs but a second fsck -n still exits {}", r3.exit_code);
    }
    outcome
}

/// The text a caught panic carried.
fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
}

fn apply(base: &Base, flips: &[(u64, u8)], fix: Option<u64>) -> Vec<u8> {
    let mut img = base.img.clone();
    for &(o, x) in flips {
        img[o as usize] ^= x;
    }
    if let Some(b) = fix {
        fix_crc(&mut img, b);
    }
    img
}

/// A hang is a failure too (in the kernel it is a soft lockup under the
/// engine mutex): abort the test binary, naming the seed, when one seed
/// takes longer than 60 s.
fn watchdog(current: std::sync::Arc<std::sync::atomic::AtomicU64>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut last = u64::MAX;
        loop {
            std::thread::sleep(std::time::Duration::from_secs(60));
            let now = current.load(std::sync::atomic::Ordering::Relaxed);
            if now == u64::MAX {
                return;
            }
            if now == last {
                eprintln!("fuzz: input {now} did not finish within 60 s: the engine hangs on it");
                std::process::exit(101);
            }
            last = now;
        }
    })
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn fuzz_bit_flips_never_panic() {
    let base = populated();
    let iters = env_u64("FERROFS_FUZZ_ITERS", 150);
    let seed0 = env_u64("FERROFS_FUZZ_SEED", 1);
    let mut stats = std::collections::BTreeMap::new();
    let mut crashers = Vec::new();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let verbose = std::env::var_os("FERROFS_FUZZ_VERBOSE").is_some();
    let current = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(seed0));
    let _watchdog = watchdog(current.clone());
    for s in seed0..seed0 + iters {
        current.store(s, std::sync::atomic::Ordering::Relaxed);
        let (flips, fix) = damage(&base, s);
        if verbose {
            eprintln!("fuzz: seed {s}: {flips:?} crc {fix:?}");
        }
        let img = apply(&base, &flips, fix);
        match catch_unwind(AssertUnwindSafe(|| exercise(img))) {
            Ok(o) => *stats.entry(o).or_insert(0u64) += 1,
            Err(e) => {
                let msg = panic_message(&*e);
                let lines: Vec<String> = flips.iter().map(|(o, x)| format!("{o} {x}")).collect();
                crashers.push(format!(
                    "seed {s}: panic: {msg}\n  corpus file:\n{}{}",
                    lines.join("\n"),
                    fix.map(|b| format!("\ncrc {b}")).unwrap_or_default()
                ));
            }
        }
    }
    current.store(u64::MAX, std::sync::atomic::Ordering::Relaxed);
    std::panic::set_hook(hook);
    eprintln!("fuzz: {iters} images (seeds {seed0}..{}): {stats:?}", seed0 + iters);
    println!("fuzz: {iters} images, {} panics", crashers.len());
    assert!(crashers.is_empty(), "{} of {iters} images panicked:\n{}", crashers.len(), crashers.join("\n"));
    // the fuzzer must reach past the crc checks, not only be refused at mount
    assert!(stats.get("mounted, damage found").copied().unwrap_or(0) > 0, "{stats:?}");
}

// The in-VM corrupted-image generator, for its cases in userspace.
#[path = "../examples/corrupt-images.rs"]
#[allow(dead_code)]
mod corrupt_images;

/// Every case of the corrupted-image set the VM mounts (tests/guest/stress/
/// 10-corrupt-images.py), run through the userspace engine and fsck first:
/// the same mount, parse and operation code, with overflow checks, in
/// seconds instead of a VM boot. Nothing may panic or hang; `mount` cases
/// must be refused by mount, `detect` cases refused or caught by some
/// operation. FERROFS_CORRUPT_RANDOM (default 40) random flips are added;
/// `make stress` generates its own, longer set for the VM.
#[test]
fn corrupt_image_cases_in_userspace() {
    let dir = std::env::temp_dir().join(format!("ferrofs-corrupt-{}", std::process::id()));
    let random = env_u64("FERROFS_CORRUPT_RANDOM", 40);
    let n = corrupt_images::generate(&dir, random, env_u64("FERROFS_FUZZ_SEED", 1), false);
    let base = std::fs::read(dir.join("base.img")).unwrap();
    let manifest = std::fs::read_to_string(dir.join("cases.tsv")).unwrap();
    // FERROFS_CORRUPT_ONLY=N: only the case on line N (0-based, what a
    // hang or failure names), to replay one with the run's seed and count
    let only = std::env::var("FERROFS_CORRUPT_ONLY").ok().and_then(|v| v.parse::<usize>().ok());
    eprintln!(
        "corrupt images in userspace: {} cases, FERROFS_FUZZ_SEED={} FERROFS_CORRUPT_RANDOM={random} \
         (replay case N alone: the same and FERROFS_CORRUPT_ONLY=N)",
        manifest.lines().count(),
        env_u64("FERROFS_FUZZ_SEED", 1)
    );
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let current = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let _watchdog = watchdog(current.clone());
    let (mut bad, mut stats) = (Vec::new(), std::collections::BTreeMap::new());
    for (i, line) in manifest.lines().enumerate() {
        if only.is_some_and(|o| o != i) {
            continue;
        }
        current.store(i as u64, std::sync::atomic::Ordering::Relaxed);
        let f: Vec<&str> = line.split('\t').collect();
        let (name, expect, patch) = (f[0], f[1], f[2]);
        if only.is_some() {
            eprintln!("corrupt images in userspace: case {i}: {name}");
        }
        let mut img = base.clone();
        let p = std::fs::read(dir.join(patch)).unwrap();
        for rec in p.chunks(8 + BLOCK_SIZE as usize) {
            let blk = u64::from_le_bytes(rec[..8].try_into().unwrap()) as usize;
            img[blk * BLOCK_SIZE as usize..(blk + 1) * BLOCK_SIZE as usize].copy_from_slice(&rec[8..]);
        }
        match catch_unwind(AssertUnwindSafe(|| exercise_file(img, b"big"))) {
            Err(e) => {
                let msg = panic_message(&*e);
                bad.push(format!("{name}: panic: {msg}"));
            }
            Ok(o) => {
                *stats.entry(o).or_insert(0u64) += 1;
                if expect == "mount" && o != "mount refused" {
                    bad.push(format!("{name}: expected mount to refuse it, got \"{o}\""));
                }
                if expect == "detect" && o != "mount refused" && o != "mounted, damage found" {
                    bad.push(format!("{name}: expected the damage to be found (Corrupt or Io), got \"{o}\""));
                }
            }
        }
    }
    current.store(u64::MAX, std::sync::atomic::Ordering::Relaxed);
    std::panic::set_hook(hook);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("corrupt images in userspace: {n} cases: {stats:?}");
    assert!(bad.is_empty(), "{} of {n} cases failed:\n{}", bad.len(), bad.join("\n"));
}

/// Every input that once made the engine or fsck panic.
#[test]
fn fuzz_corpus_regressions() {
    let base = populated();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus");
    let mut n = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    entries.sort();
    let current = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let _watchdog = watchdog(current.clone());
    for (i, p) in entries.into_iter().enumerate() {
        current.store(i as u64, std::sync::atomic::Ordering::Relaxed);
        eprintln!("fuzz corpus: input {i}: {}", p.display());
        if p.extension().and_then(|e| e.to_str()) != Some("txt") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let (mut flips, mut fix) = (Vec::new(), None);
        for l in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.as_slice() {
                ["crc", b] => fix = Some(b.parse().unwrap()),
                [o, x] => flips.push((o.parse().unwrap(), x.parse().unwrap())),
                _ => panic!("{}: bad line {l}", p.display()),
            }
        }
        let img = apply(&base, &flips, fix);
        exercise(img);
        n += 1;
    }
    current.store(u64::MAX, std::sync::atomic::Ordering::Relaxed);
    eprintln!("fuzz corpus: {n} inputs replayed");
}

/// Inode records no operation can produce are corruption, found when the
/// inode is read (the kernel turned a size of 2^64-1 into a negative i_size
/// and iomap WARNed on a zero-length mapping; a block count of 2^64-1
/// overflowed blocks * 8 in the kernel's inode fill, a Rust panic, i.e. a
/// BUG; the in-VM corrupted-image test found both).
#[test]
fn impossible_inode_fields_are_corrupt() {
    let base = populated();
    for (what, off, val) in [
        ("size u64 max", 24usize, u64::MAX),
        ("size 2^63", 24, 1 << 63),
        ("mode 0", 0, 0),
        ("blocks u64 max", 32, u64::MAX),
        ("blocks 2^51 + 1", 32, (1 << 51) + 1),
    ] {
        let pm = SimPmem::from_image(base.img.clone(), false);
        let mut fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
        let f = fs.lookup(ROOT_INO, b"f").unwrap().unwrap();
        let mut v = [0u8; INODE_SIZE];
        assert!(fs.tree_get(TreeId::Inode, Key::new(f, 0, 0), &mut v).unwrap());
        if off == 0 {
            v[0..4].copy_from_slice(&(val as u32).to_le_bytes());
        } else {
            v[off..off + 8].copy_from_slice(&val.to_le_bytes());
        }
        fs.tree_update(TreeId::Inode, Key::new(f, 0, 0), &v).unwrap();
        assert!(
            matches!(fs.read_inode(f), Err(Error::Corrupt { .. })),
            "{what}: read_inode gave {:?}",
            fs.read_inode(f)
        );
        // and the filesystem around it still works
        fs.create(ROOT_INO, b"other", &NewInode { mode: S_IFREG | 0o644, time: T, ..Default::default() }).unwrap();
    }
}
