//! Remounting: a read-only mount writes nothing; `remount_rw` does at the
//! transition what a writable mount does at once (superblock marked dirty,
//! orphans reaped), crash-safely at every fence and with every load failing
//! in turn; `remount_ro` leaves exactly the media a clean unmount leaves and
//! refuses writes; a norecovery mount, or unknown read-only-compatible
//! features, refuse `remount_rw` without writing.

mod common;

use common::*;
use ferrofs_engine::*;
use ferrofs_tools::fsck::{fsck, FsckOptions};
use ferrofs_tools::{CrashMode, CrashView, SimPmem};
use std::cell::RefCell;
use std::rc::Rc;

const RW: MountOptions = MountOptions { read_only: false, time: 9 };
const RO: MountOptions = MountOptions { read_only: true, time: 9 };

fn reg() -> NewInode {
    NewInode { mode: S_IFREG | 0o644, time: T, ..Default::default() }
}

/// `base_setup`, then a crash with two orphans: an unlinked file of
/// `extents` extents (300: its reaping takes several transactions) and an
/// O_TMPFILE, both "still open" when the system stopped. Returns the image
/// and the orphans.
fn orphan_image_of(extents: u64) -> (Vec<u8>, [u64; 2]) {
    let (start, _) = start_image(base_setup);
    let pm = SimPmem::from_image(start, false);
    let mut fs = Fs::mount(&pm, &RW).unwrap();
    let big = file(&mut fs, ROOT_INO, b"big", 0, 0);
    for l in 0..extents {
        ferrofs_tools::harness::write(&mut fs, big, l * 2 * BLOCK_SIZE, &[l as u8; 64], T).unwrap();
    }
    assert_eq!(fs.unlink(ROOT_INO, b"big", T).unwrap(), big);
    let (tmp, _) = fs.tmpfile(ROOT_INO, &reg()).unwrap();
    ferrofs_tools::harness::write(&mut fs, tmp, 0, &[7u8; 3 * BLOCK_SIZE as usize], T).unwrap();
    let _ = fs.into_media(); // the crash: no unmount, orphans not evicted
    (pm.snapshot(), [big, tmp])
}

fn orphan_image() -> (Vec<u8>, [u64; 2]) {
    orphan_image_of(300)
}

/// fsck of `img`, then the state a writable mount of it sees.
fn recovered(img: Vec<u8>, what: &str) -> Dump {
    let pm = SimPmem::from_image(img, false);
    let fs = Fs::mount(&pm, &RW).unwrap_or_else(|e| panic!("{what}: mount failed: {e:?}"));
    let rep = fsck(&pm, FsckOptions::default());
    assert_eq!(rep.exit_code, 0, "{what}: fsck:\n{}", rep.describe());
    state(&fs)
}

#[test]
fn read_only_mount_writes_nothing_and_remount_rw_reaps_orphans() {
    let (img, orphans) = orphan_image();
    let post = recovered(img.clone(), "writable mount");
    let pm = SimPmem::from_image(img.clone(), false);
    let fs = Fs::mount(&pm, &RO).unwrap();
    assert!(fs.is_read_only() && fs.mount_report().was_dirty);
    assert_eq!(fs.mount_report().orphans_reaped, 0);
    for o in orphans {
        assert_eq!(fs.read_inode(o).unwrap().nlink, 0, "orphan {o} still there on the read-only mount");
    }
    fs.unmount(10).unwrap();
    assert!(pm.snapshot() == img, "a read-only mount (and its unmount) wrote to the media");

    let mut fs = Fs::mount(&pm, &RO).unwrap();
    assert_eq!(fs.create(ROOT_INO, b"x", &reg()).unwrap_err(), Error::ReadOnly);
    let count0 = fs.superblock().mount_count;
    assert_eq!(fs.remount_rw(11).unwrap(), 2);
    assert!(!fs.is_read_only());
    assert_eq!(fs.mount_report().orphans_reaped, 2);
    for o in orphans {
        assert_eq!(fs.read_inode(o).unwrap_err(), Error::NotFound, "orphan {o} not reaped");
    }
    let sb = *fs.superblock();
    assert_eq!((sb.state, sb.mount_count, sb.mount_time), (STATE_DIRTY, count0.wrapping_add(1), 11));
    assert!(state(&fs) == post, "remount rw reaped differently from a writable mount");
    assert!(Fs::needs_recovery(&pm).unwrap(), "a writable mount must be marked dirty on media");
    // a second remount rw is a no-op; writes work
    assert_eq!(fs.remount_rw(12).unwrap(), 0);
    let (n, _) = fs.create(ROOT_INO, b"after", &reg()).unwrap();
    ferrofs_tools::harness::write(&mut fs, n, 0, b"written after remount", T).unwrap();
    fs.unmount(13).unwrap();
    assert!(!Fs::needs_recovery(&pm).unwrap());
    let rep = fsck(&pm, FsckOptions::default());
    assert_eq!(rep.exit_code, 0, "{}", rep.describe());
}

#[test]
fn remount_ro_leaves_what_a_clean_unmount_leaves() {
    let (start, ctx) = start_image(base_setup);
    let op = |fs: &mut Fs<&SimPmem>| {
        let (n, _) = fs.create(ROOT_INO, b"new", &reg()).unwrap();
        ferrofs_tools::harness::write(fs, n, 0, &[3u8; 5000], T).unwrap();
        let i = fs.unlink(ROOT_INO, b"shared", T).unwrap();
        fs.evict(i).unwrap(); // closed: no orphan left
    };
    let a = SimPmem::from_image(start.clone(), false);
    let mut fs = Fs::mount(&a, &RW).unwrap();
    op(&mut fs);
    fs.unmount(20).unwrap();

    let b = SimPmem::from_image(start, false);
    let mut fs = Fs::mount(&b, &RW).unwrap();
    op(&mut fs);
    let pre = state(&fs);
    fs.remount_ro(20).unwrap();
    assert!(fs.is_read_only());
    assert!(b.snapshot() == a.snapshot(), "remount ro left different media than a clean unmount");
    assert!(!Fs::needs_recovery(&b).unwrap());
    // every write is refused, reads still work, nothing more is written
    let img = b.snapshot();
    assert_eq!(fs.create(ROOT_INO, b"y", &reg()).unwrap_err(), Error::ReadOnly);
    assert_eq!(fs.set_size(ctx.ino["a"], 0, T).unwrap_err(), Error::ReadOnly);
    assert_eq!(fs.unlink(ROOT_INO, b"a", T).unwrap_err(), Error::ReadOnly);
    assert_eq!(fs.xattr_set(ctx.ino["a"], 1, b"user.z", b"v", XattrMode::Any).unwrap_err(), Error::ReadOnly);
    assert!(state(&fs) == pre);
    fs.remount_ro(21).unwrap(); // no-op
    assert!(b.snapshot() == img, "a read-only mount wrote");
    // and back: writable again, dirty on media, clean after unmount
    let count = fs.superblock().mount_count;
    assert_eq!(fs.remount_rw(22).unwrap(), 0);
    assert_eq!(fs.superblock().mount_count, count.wrapping_add(1));
    assert!(Fs::needs_recovery(&b).unwrap());
    fs.create(ROOT_INO, b"y", &reg()).unwrap();
    fs.unmount(23).unwrap();
    assert!(!Fs::needs_recovery(&b).unwrap());
    let rep = fsck(&b, FsckOptions::default());
    assert_eq!(rep.exit_code, 0, "{}", rep.describe());
}

#[test]
fn norecovery_mount_refuses_remount_rw_and_writes_nothing() {
    let (img, orphans) = orphan_image();
    let pm = SimPmem::from_image(img.clone(), false);
    let mut fs = Fs::mount_norecovery(&pm, 9).unwrap();
    assert_eq!(fs.write_blocker(), Some(WriteBlocker::NoRecovery));
    assert_eq!(fs.remount_rw(10).unwrap_err(), Error::Invalid);
    assert!(fs.is_read_only());
    assert_eq!(fs.create(ROOT_INO, b"x", &reg()).unwrap_err(), Error::ReadOnly);
    assert_eq!(fs.read_inode(orphans[0]).unwrap().nlink, 0);
    fs.remount_ro(11).unwrap();
    drop(fs);
    assert!(pm.snapshot() == img, "a refused remount wrote to the media");
    // a recovering read-only mount of the same media may become writable
    let mut fs = Fs::mount(&pm, &RO).unwrap();
    assert_eq!(fs.write_blocker(), None);
    assert_eq!(fs.remount_rw(12).unwrap(), 2);
}

#[test]
fn unknown_ro_compat_features_refuse_remount_rw() {
    let pm = SimPmem::from_image(new_fs(), false);
    let mut b: [u8; SB_SIZE] = pm.peek(0, SB_SIZE).try_into().unwrap();
    let mut sb = Superblock::decode(&b, 0).unwrap();
    sb.ro_compat |= 1 << 40;
    sb.encode(&mut b);
    (&pm).write(0, &b);
    let before = pm.snapshot();
    // even asked for read-write, the mount is read-only
    let mut fs = Fs::mount(&pm, &RW).unwrap();
    assert!(fs.is_read_only());
    assert_eq!(fs.write_blocker(), Some(WriteBlocker::RoCompat(1 << 40)));
    assert_eq!(fs.remount_rw(10).unwrap_err(), Error::ReadOnly);
    assert!(fs.is_read_only());
    fs.unmount(11).unwrap();
    assert!(pm.snapshot() == before);
}

/// Crash at every fence of `remount_rw` (the superblock transaction and the
/// orphan reaping's transactions): each image must mount, pass fsck and be
/// the filesystem a writable mount of the crashed image gives (the next
/// mount finishes what the transition started); a read-only mount of it,
/// remounted read-write, must give the same.
#[test]
fn crash_every_fence_of_remount_rw() {
    const MODES: [CrashMode; 4] = [CrashMode::DurableOnly, CrashMode::AllStored, CrashMode::Random(21), CrashMode::Random(22)];
    let (img, _) = orphan_image();
    let post = recovered(img.clone(), "reference");
    let tp = SimPmem::from_image(img, true);
    let mut fs = Fs::mount(&tp, &RO).unwrap();
    let seen = Rc::new(RefCell::new((0u64, 0u64)));
    let (s2, post2) = (seen.clone(), post.clone());
    tp.set_fence_hook(Some(Box::new(move |v: &CrashView| {
        let mut c = s2.borrow_mut();
        c.0 += 1;
        for (i, mode) in MODES.iter().enumerate() {
            if i >= 2 && v.pending.is_empty() {
                break;
            }
            let what = format!("remount_rw fence {} {mode:?}", v.fence_no);
            let im = v.image(*mode);
            assert!(recovered(im.clone(), &what) == post2, "{what}: not the recovered state");
            c.1 += 1;
            if i == 0 {
                let pm = SimPmem::from_image(im, false);
                let mut fs = Fs::mount(&pm, &RO).unwrap_or_else(|e| panic!("{what}: ro mount: {e:?}"));
                fs.remount_rw(30).unwrap_or_else(|e| panic!("{what}: remount rw: {e:?}"));
                assert!(state(&fs) == post2, "{what}: ro mount + remount rw differs");
                c.1 += 1;
            }
        }
    })));
    assert_eq!(fs.remount_rw(30).unwrap(), 2);
    tp.set_fence_hook(None);
    assert!(recovered(tp.durable(), "final") == post);
    let (points, states) = *seen.borrow();
    eprintln!("remount_rw: {points} persist points, {states} crash states");
    assert!(points > 20, "reaping the big orphan should take several transactions ({points} fences)");
}

/// Crash at every fence of `remount_ro`: nothing but the clean flag changes,
/// so every image recovers to the same filesystem and passes fsck.
#[test]
fn crash_every_fence_of_remount_ro() {
    let (start, _) = start_image(base_setup);
    let tp = SimPmem::from_image(start, true);
    let mut fs = Fs::mount(&tp, &RW).unwrap();
    fs.create(ROOT_INO, b"new", &reg()).unwrap();
    let pre = state(&fs);
    let seen = Rc::new(RefCell::new(0u64));
    let (s2, pre2) = (seen.clone(), pre.clone());
    tp.set_fence_hook(Some(Box::new(move |v: &CrashView| {
        for mode in [CrashMode::DurableOnly, CrashMode::AllStored, CrashMode::Random(23)] {
            let what = format!("remount_ro fence {} {mode:?}", v.fence_no);
            assert!(recovered(v.image(mode), &what) == pre2, "{what}: state changed");
            *s2.borrow_mut() += 1;
        }
    })));
    fs.remount_ro(40).unwrap();
    tp.set_fence_hook(None);
    assert!(*seen.borrow() > 0);
    assert!(!Fs::needs_recovery(&tp).unwrap());
    assert!(recovered(tp.durable(), "final") == pre);
}

/// Every load of `remount_rw` failing in turn (a machine check on a
/// metadata block): the transition either succeeds or fails leaving the
/// mount read-only; a retry then succeeds and the result is the recovered
/// filesystem.
#[test]
fn failed_load_during_remount_rw_stays_read_only() {
    let (img, _) = orphan_image_of(12);
    let post = recovered(img.clone(), "reference");
    let (mut errors, mut n) = (0, 0);
    loop {
        let pm = SimPmem::from_image(img.clone(), false);
        let mut fs = Fs::mount(&pm, &RO).unwrap();
        pm.fail_nth_load(Some(n));
        let r = fs.remount_rw(50);
        pm.fail_nth_load(None);
        if pm.failed_loads() == 0 {
            r.unwrap();
            break;
        }
        if let Err(e) = r {
            assert!(matches!(e, Error::Io { .. }), "load {n}: {e:?}");
            assert!(fs.is_read_only(), "load {n}: a failed transition left the mount writable");
            assert_eq!(fs.create(ROOT_INO, b"x", &reg()).unwrap_err(), Error::ReadOnly);
            fs.remount_rw(51).unwrap_or_else(|e| panic!("load {n}: retry failed: {e:?}"));
            errors += 1;
        }
        assert!(state(&fs) == post, "load {n}: not the recovered state");
        fs.unmount(52).unwrap();
        let rep = fsck(&pm, FsckOptions::default());
        assert_eq!(rep.exit_code, 0, "load {n}: {}", rep.describe());
        n += 1;
    }
    eprintln!("remount_rw: {n} loads failed in turn, {errors} errors");
    assert!(errors > 0 && n > 50);
}

/// FIFREEZE's engine half: `quiesce` leaves exactly the media a clean
/// unmount leaves (so a snapshot of a frozen filesystem mounts without
/// recovery), a crash at any of its fences recovers to the same state, a
/// refused operation afterwards keeps it clean, and the first change
/// afterwards marks the superblock dirty in its own commit: no crash image
/// shows the change beside a clean superblock.
#[test]
fn quiesce_is_a_clean_unmount_until_the_next_change() {
    let (start, ctx) = start_image(base_setup);
    let op = |fs: &mut Fs<&SimPmem>| {
        let (n, _) = fs.create(ROOT_INO, b"new", &reg()).unwrap();
        ferrofs_tools::harness::write(fs, n, 0, &[3u8; 5000], T).unwrap();
    };
    let a = SimPmem::from_image(start.clone(), false);
    let mut fs = Fs::mount(&a, &RW).unwrap();
    op(&mut fs);
    fs.unmount(20).unwrap();

    let tp = SimPmem::from_image(start, true);
    let mut fs = Fs::mount(&tp, &RW).unwrap();
    op(&mut fs);
    assert!(!fs.is_quiesced());
    let pre = state(&fs);
    let seen = Rc::new(RefCell::new(0u64));
    let (s2, pre2) = (seen.clone(), pre.clone());
    tp.set_fence_hook(Some(Box::new(move |v: &CrashView| {
        for mode in [CrashMode::DurableOnly, CrashMode::AllStored, CrashMode::Random(29)] {
            let what = format!("quiesce fence {} {mode:?}", v.fence_no);
            assert!(recovered(v.image(mode), &what) == pre2, "{what}: state changed");
            *s2.borrow_mut() += 1;
        }
    })));
    fs.quiesce(20).unwrap();
    tp.set_fence_hook(None);
    assert!(*seen.borrow() > 0);
    assert!(fs.is_quiesced() && !fs.is_read_only());
    assert!(tp.durable() == a.snapshot(), "quiesce left different media than a clean unmount");
    assert!(!Fs::needs_recovery(&tp).unwrap());
    fs.quiesce(20).unwrap();
    assert!(tp.durable() == a.snapshot(), "a second quiesce changed the media");

    // a refused change writes nothing and stays clean
    assert_eq!(fs.create(ROOT_INO, b"new", &reg()).unwrap_err(), Error::Exists);
    assert_eq!(fs.unlink(ctx.ino["dir"], b"sub", T).unwrap_err(), Error::IsDir);
    assert!(fs.is_quiesced() && tp.durable() == a.snapshot());

    // the first change: dirty in the same commit as the change
    let counts = Rc::new(RefCell::new([0u64; 2]));
    let c2 = counts.clone();
    tp.set_fence_hook(Some(Box::new(move |v: &CrashView| {
        for mode in [CrashMode::DurableOnly, CrashMode::AllStored, CrashMode::Random(31)] {
            let img = v.image(mode);
            let dirty = Fs::needs_recovery(&SimPmem::from_image(img.clone(), false)).unwrap();
            let pm = SimPmem::from_image(img, false);
            let fs = Fs::mount(&pm, &RW).unwrap();
            let made = fs.lookup(ROOT_INO, b"y").unwrap().is_some();
            assert!(dirty || !made, "fence {} {mode:?}: the create is on media under a clean superblock", v.fence_no);
            c2.borrow_mut()[usize::from(made)] += 1;
        }
    })));
    fs.create(ROOT_INO, b"y", &reg()).unwrap();
    tp.set_fence_hook(None);
    let [before, after] = *counts.borrow();
    assert!(before > 0 && after > 0, "crash states: {before} without the create, {after} with it");
    assert!(!fs.is_quiesced());
    assert!(Fs::needs_recovery(&tp).unwrap());
    fs.unmount(30).unwrap();
    assert!(!Fs::needs_recovery(&tp).unwrap());
    let rep = fsck(&tp, FsckOptions::default());
    assert_eq!(rep.exit_code, 0, "{}", rep.describe());
}
