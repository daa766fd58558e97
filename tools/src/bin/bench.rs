//! ferrofs-engine-bench: engine costs on simulated pmem (not a test).
//!
//! 1. N reflinks of one block into one file at distinct offsets (like
//!    xfstests generic/175), which also builds a file with N extents.
//! 2. Random `map` lookups in that file, reading it back, and punching it
//!    (freeing N shared extents in bounded transactions).
//!
//! Usage: ferrofs-engine-bench [N]   (default 1000000)

use ferrofs_engine::*;
use ferrofs_tools::{harness, rng::Rng, SimPmem};
use std::time::Instant;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn report(what: &str, n: u64, t: Instant) {
    let el = t.elapsed();
    println!(
        "{what:<40} {n:>9} ops {:>9.3} s {:>9.2} us/op   peak RSS {} MiB",
        el.as_secs_f64(),
        el.as_secs_f64() * 1e6 / n.max(1) as f64,
        peak_rss_kib() / 1024
    );
}

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let size = (256u64 << 20) + n * 256;
    let pm = SimPmem::new(size);
    let t0 = Time { sec: 1, nsec: 0 };
    let o = FormatOptions { label: b"bench", uuid: [5; 16], size_bytes: 0, time: t0, journal_slots: DEFAULT_JOURNAL_SLOTS, stripe: (0, 0) };
    Fs::format(&pm, &o).unwrap();
    let mut fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
    let a = NewInode { mode: S_IFREG | 0o644, time: t0, ..Default::default() };
    let (src, _) = fs.create(ROOT_INO, b"src", &a).unwrap();
    harness::write(&mut fs, src, 0, &[0xab; 4096], t0).unwrap();
    let (dst, _) = fs.create(ROOT_INO, b"dst", &a).unwrap();
    println!("ferrofs engine bench: N = {n}, simulated pmem {} MiB", size >> 20);

    let t = Instant::now();
    for i in 0..n {
        fs.reflink(src, 0, dst, i * 2, 1).unwrap();
    }
    report("reflink 1 block to N distinct offsets", n, t);
    let mut extents = 0u64;
    fs.extents(dst, &mut |_| extents += 1).unwrap();
    let mut refs = 0;
    fs.owners(fs.map(src, 0, 1).unwrap().pblk, 1, &mut |_, _, _, _| refs += 1).unwrap();
    println!("  dst has {extents} extents; the block has {refs} owners (rmap); trees: extent h={} rmap h={}",
        fs.tree_root(TreeId::Extent).height, fs.tree_root(TreeId::Rmap).height);

    let t = Instant::now();
    let mut r = Rng::new(1);
    let lookups = n.min(200_000);
    for _ in 0..lookups {
        let l = r.below(2 * n);
        let m = fs.map(dst, l, 1).unwrap();
        assert_eq!(m.kind == MapKind::Written, l.is_multiple_of(2));
    }
    report("map() random lookups in N-extent file", lookups, t);

    let t = Instant::now();
    let m2 = fs.unmount(2).unwrap();
    let mut fs = Fs::mount(m2, &MountOptions::default()).unwrap();
    report("unmount + mount", 1, t);

    let t = Instant::now();
    fs.reflink(dst, 0, src, 16, 2 * n).unwrap();
    report("reflink whole N-extent file (1 call)", n, t);

    let t = Instant::now();
    fs.punch(dst, 0, 2 * n).unwrap();
    report("punch N shared extents (1 call)", n, t);

    let t = Instant::now();
    fs.set_size(src, 0, t0).unwrap();
    report("truncate N-extent file to 0 (1 call)", n, t);
    println!("free blocks {} of {}", fs.statfs().free_blocks, fs.statfs().blocks);
}
