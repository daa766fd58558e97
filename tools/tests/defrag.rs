//! Online defragmentation (`Fs::defrag_step`): fragmented runs become one
//! extent with the same bytes, block count and times; holes, shared extents
//! and a full filesystem leave a file as it was; every crash point of a
//! whole-file defragmentation leaves the file's bytes unchanged.

mod common;

use common::{state, T};
use ferrofs_engine::*;
use ferrofs_tools::fsck::{fsck, FsckOptions};
use ferrofs_tools::{harness, CrashMode, CrashView, SimPmem};
use std::cell::RefCell;
use std::rc::Rc;

fn fs_on(pm: &SimPmem) -> Fs<&SimPmem> {
    let o = FormatOptions { label: b"", uuid: [3; 16], size_bytes: 0, time: T, journal_slots: 64, stripe: (0, 0) };
    Fs::format(pm, &o).unwrap();
    Fs::mount(pm, &MountOptions::default()).unwrap()
}

fn newfile(fs: &mut Fs<&SimPmem>, name: &str) -> u64 {
    fs.create(ROOT_INO, name.as_bytes(), &NewInode { mode: S_IFREG | 0o644, time: T, ..Default::default() }).unwrap().0
}

fn extents(fs: &Fs<&SimPmem>, ino: u64) -> Vec<Extent> {
    let mut v = Vec::new();
    fs.extents(ino, &mut |e| v.push(*e)).unwrap();
    v
}

fn block(i: u64) -> Vec<u8> {
    (0..BLOCK_SIZE).map(|b| (i * 31 + b / 7) as u8).collect()
}

/// `f` gets `n` one-block extents, each followed on the media by a block of
/// `other`: no two of them adjacent.
fn interleave(fs: &mut Fs<&SimPmem>, f: u64, other: u64, n: u64) {
    for i in 0..n {
        harness::write(fs, f, i * BLOCK_SIZE, &block(i), T).unwrap();
        harness::write(fs, other, i * BLOCK_SIZE, &block(1000 + i), T).unwrap();
    }
}

#[test]
fn fragmented_run_becomes_one_extent_with_the_same_bytes() {
    let pm = SimPmem::new(16 << 20);
    let mut fs = fs_on(&pm);
    let (f, x) = (newfile(&mut fs, "f"), newfile(&mut fs, "x"));
    interleave(&mut fs, f, x, 10);
    assert_eq!(extents(&fs, f).len(), 10);
    let (before, xbefore) = (harness::read_all(&fs, f).unwrap(), harness::read_all(&fs, x).unwrap());
    let (ino0, free0) = (fs.read_inode(f).unwrap(), fs.statfs().free_blocks);
    let d = harness::defrag(&mut fs, f).unwrap();
    assert_eq!((d.moved, d.no_space), (10, 0));
    let e = extents(&fs, f);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].lblk, e[0].len, e[0].flags), (0, 10, 0));
    assert!(harness::read_all(&fs, f).unwrap() == before, "bytes changed");
    assert!(harness::read_all(&fs, x).unwrap() == xbefore, "the other file changed");
    let ino1 = fs.read_inode(f).unwrap();
    assert_eq!((ino1.size, ino1.blocks, ino1.mtime, ino1.ctime), (ino0.size, ino0.blocks, ino0.mtime, ino0.ctime));
    assert_eq!(fs.statfs().free_blocks, free0, "the old blocks were not freed");
    // a second pass has nothing to do
    assert_eq!(harness::defrag(&mut fs, f).unwrap().moved, 0);
    fs.unmount(2).unwrap();
    assert_eq!(fsck(&pm, FsckOptions::default()).exit_code, 0);
}

#[test]
fn holes_and_shared_extents_stay_where_they_are() {
    let pm = SimPmem::new(16 << 20);
    let mut fs = fs_on(&pm);
    let (f, x) = (newfile(&mut fs, "f"), newfile(&mut fs, "x"));
    // every other block: eight extents, each alone between holes
    for i in 0..8u64 {
        harness::write(&mut fs, f, 2 * i * BLOCK_SIZE, &block(i), T).unwrap();
        harness::write(&mut fs, x, i * BLOCK_SIZE, &block(50 + i), T).unwrap();
    }
    let e0 = extents(&fs, f);
    assert_eq!(e0.len(), 8);
    assert_eq!(harness::defrag(&mut fs, f).unwrap().moved, 0);
    assert_eq!(extents(&fs, f), e0);
    // a fragmented run whose middle block is shared with a clone: the
    // shared block stays shared, the pieces around it are not merged with it
    let (g, y, c) = (newfile(&mut fs, "g"), newfile(&mut fs, "y"), newfile(&mut fs, "c"));
    interleave(&mut fs, g, y, 6);
    fs.reflink(g, 3, c, 0, 1).unwrap();
    let shared = fs.map(g, 3, 1).unwrap();
    assert!(shared.shared);
    let before = harness::read_all(&fs, g).unwrap();
    let d = harness::defrag(&mut fs, g).unwrap();
    assert_eq!(d.moved, 5, "blocks 0-2 and 4-5 move, 3 does not");
    let after = fs.map(g, 3, 1).unwrap();
    assert_eq!((after.pblk, after.shared), (shared.pblk, true));
    let e = extents(&fs, g);
    assert_eq!(e.iter().map(|e| (e.lblk, e.len)).collect::<Vec<_>>(), [(0, 3), (3, 1), (4, 2)]);
    assert!(harness::read_all(&fs, g).unwrap() == before);
    fs.unmount(2).unwrap();
    assert_eq!(fsck(&pm, FsckOptions::default()).exit_code, 0);
}

#[test]
fn unwritten_runs_merge_and_stay_unwritten() {
    let pm = SimPmem::new(16 << 20);
    let mut fs = fs_on(&pm);
    let (f, x) = (newfile(&mut fs, "f"), newfile(&mut fs, "x"));
    for i in 0..6u64 {
        fs.fallocate(f, i, 1, false).unwrap();
        harness::write(&mut fs, x, i * BLOCK_SIZE, &block(i), T).unwrap();
    }
    assert_eq!(extents(&fs, f).len(), 6);
    assert_eq!(harness::defrag(&mut fs, f).unwrap().moved, 6);
    let e = extents(&fs, f);
    assert_eq!(e.iter().map(|e| (e.lblk, e.len, e.flags)).collect::<Vec<_>>(), [(0, 6, EXT_UNWRITTEN)]);
    assert!(harness::read_all(&fs, f).unwrap().iter().all(|&b| b == 0));
    fs.unmount(2).unwrap();
    assert_eq!(fsck(&pm, FsckOptions::default()).exit_code, 0);
}

/// An extent longer than one step's copy moves in several steps and still
/// ends as one extent.
#[test]
fn long_extents_move_in_bounded_steps() {
    let pm = SimPmem::new(64 << 20);
    let mut fs = fs_on(&pm);
    let (f, x) = (newfile(&mut fs, "f"), newfile(&mut fs, "x"));
    let big: Vec<u8> = (0..1300 * BLOCK_SIZE).map(|i| (i / 4093) as u8).collect();
    harness::write(&mut fs, f, 0, &block(1), T).unwrap();
    harness::write(&mut fs, x, 0, &block(9), T).unwrap();
    harness::write(&mut fs, f, BLOCK_SIZE, &big, T).unwrap();
    let n0 = extents(&fs, f).len();
    assert!(n0 >= 2, "{:?}", extents(&fs, f));
    let before = harness::read_all(&fs, f).unwrap();
    let mut d = Defrag::default();
    let (mut cur, mut steps) = (0, 0);
    while let Some(next) = fs.defrag_step(f, cur, MAX_LBLK, &mut d).unwrap() {
        cur = next;
        steps += 1;
    }
    assert_eq!(d.moved, 1301);
    assert!(steps >= 4, "1301 blocks in {steps} steps");
    assert_eq!(extents(&fs, f).len(), 1, "{:?}", extents(&fs, f));
    assert!(harness::read_all(&fs, f).unwrap() == before);
    fs.unmount(2).unwrap();
    assert_eq!(fsck(&pm, FsckOptions::default()).exit_code, 0);
}

/// With no free run long enough the file is left as it was, and counted.
#[test]
fn no_contiguous_space_leaves_the_file_alone() {
    let pm = SimPmem::new(8 << 20);
    let mut fs = fs_on(&pm);
    let (f, x) = (newfile(&mut fs, "f"), newfile(&mut fs, "x"));
    interleave(&mut fs, f, x, 8);
    // every fourth block of the data region taken out of use (as memory
    // failure does): plenty of free blocks, no run of more than three
    let sb = fs.superblock();
    for b in (sb.data_start..sb.total_blocks - 1).step_by(4) {
        if !fs.block_in_use(b).unwrap() {
            fs.quarantine(b, 1).unwrap();
        }
    }
    assert!(fs.statfs().free_blocks > 100);
    let e0 = extents(&fs, f);
    let d = harness::defrag(&mut fs, f).unwrap();
    assert_eq!((d.moved, d.no_space), (0, 1));
    assert_eq!(extents(&fs, f), e0);
    fs.unmount(2).unwrap();
    assert_eq!(fsck(&pm, FsckOptions::default()).exit_code, 0);
}

/// Crash at every fence of a whole-file defragmentation (many transactions):
/// each crash state mounts, passes fsck, has the file's bytes and block count
/// unchanged and every other file exactly as it was; the last state is the
/// defragmented file.
#[test]
fn crash_anywhere_in_defrag_keeps_the_bytes() {
    let pm = SimPmem::new(3 << 20);
    let mut fs = fs_on(&pm);
    let (f, x) = (newfile(&mut fs, "f"), newfile(&mut fs, "x"));
    interleave(&mut fs, f, x, 12);
    let c = newfile(&mut fs, "c");
    fs.reflink(f, 5, c, 0, 1).unwrap();
    fs.unmount(1).unwrap();
    let start = pm.snapshot();
    let tp = SimPmem::from_image(start, true);
    let mut fs = Fs::mount(&tp, &MountOptions { read_only: false, time: 9 }).unwrap();
    let bytes = harness::read_all(&fs, f).unwrap();
    let blocks = fs.read_inode(f).unwrap().blocks;
    let mut others = state(&fs);
    // everything but the file's extent map and the free block count
    others.retain(|k, _| *k != format!("#ext {f}") && k != "#sb");
    let checked = Rc::new(RefCell::new(0u64));
    let ck = checked.clone();
    let (bytes2, others2) = (bytes.clone(), others.clone());
    tp.set_fence_hook(Some(Box::new(move |v: &CrashView| {
        for mode in [CrashMode::DurableOnly, CrashMode::AllStored, CrashMode::Random(v.fence_no)] {
            let p = SimPmem::from_image(v.image(mode), false);
            let fs = Fs::mount(&p, &MountOptions { read_only: false, time: 9 }).unwrap();
            let rep = fsck(&p, FsckOptions::default());
            assert_eq!(rep.exit_code, 0, "fence {} {mode:?}:\n{}", v.fence_no, rep.describe());
            assert!(harness::read_all(&fs, f).unwrap() == bytes2, "fence {} {mode:?}: bytes changed", v.fence_no);
            assert_eq!(fs.read_inode(f).unwrap().blocks, blocks);
            let mut s = state(&fs);
            s.retain(|k, _| others2.contains_key(k));
            assert_eq!(s, others2, "fence {} {mode:?}: another file changed", v.fence_no);
            *ck.borrow_mut() += 1;
        }
    })));
    let d = harness::defrag(&mut fs, f).unwrap();
    tp.set_fence_hook(None);
    assert_eq!(d.moved, 11, "every block but the shared one");
    let n = *checked.borrow();
    assert!(n > 30, "only {n} crash states");
    eprintln!("defrag crash states checked: {n}");
    let e = extents(&fs, f);
    assert_eq!(e.iter().map(|e| (e.lblk, e.len)).collect::<Vec<_>>(), [(0, 5), (5, 1), (6, 6)]);
}
