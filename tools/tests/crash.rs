//! Crash-point enumeration. For every operation kind, crash at every fence
//! (persist point); for each point build several images: durable-only,
//! everything stored, and seeded random subsets of the not-yet-durable
//! 8-byte words (torn writes). Each image must mount (recovery), pass fsck,
//! and show the operation wholly present or wholly absent.

mod common;

use common::*;
use ferrofs_engine::*;
use ferrofs_tools::fsck::{fsck, FsckOptions};
use ferrofs_tools::{CrashMode, CrashView, SimPmem};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

const MODES: [CrashMode; 10] = [
    CrashMode::DurableOnly,
    CrashMode::AllStored,
    CrashMode::Random(1),
    CrashMode::Random(2),
    CrashMode::Random(3),
    CrashMode::Random(4),
    CrashMode::Random(5),
    CrashMode::Random(6),
    CrashMode::Random(7),
    CrashMode::Random(8),
];

fn check_image(img: Vec<u8>, pre: &Dump, post: &Dump, what: &str) -> u8 {
    let pm = SimPmem::from_image(img, false);
    let fs = match Fs::mount(&pm, &MountOptions { read_only: false, time: 9 }) {
        Ok(f) => f,
        Err(e) => panic!("{what}: mount after crash failed: {e:?}"),
    };
    let rep = fsck(&pm, FsckOptions::default());
    assert_eq!(rep.exit_code, 0, "{what}: fsck after recovery:\n{}", rep.describe());
    let s = state(&fs);
    if &s == pre {
        0
    } else if &s == post {
        1
    } else {
        for (k, v) in post {
            if s.get(k) != Some(v) {
                eprintln!("post {k}: {v}\ngot  {k}: {:?}\npre  {k}: {:?}", s.get(k), pre.get(k));
            }
        }
        panic!("{what}: state after crash is neither before nor after the operation")
    }
}

fn crash_op(name: &str, setup: Setup, op: Op) -> (u64, u64) {
    crash_op_modes(name, setup, op, &MODES)
}

fn crash_op_modes(name: &str, setup: Setup, op: Op, modes: &'static [CrashMode]) -> (u64, u64) {
    let (start, ctx) = start_image(setup);
    crash_from(name, start, ctx, op, modes)
}

/// Every crash point of `op` run on the image `start`.
fn crash_from(name: &str, start: Vec<u8>, ctx: Ctx, op: Op, modes: &'static [CrashMode]) -> (u64, u64) {
    // Reference run.
    let refpm = SimPmem::from_image(start.clone(), false);
    let mut fs = Fs::mount(&refpm, &MountOptions { read_only: false, time: 9 }).unwrap();
    let pre = state(&fs);
    op(&mut fs, &ctx).unwrap_or_else(|e| panic!("{name}: reference run failed: {e:?}"));
    // The state as the next mount sees it (orphans reaped).
    let after = SimPmem::from_image(refpm.snapshot(), false);
    let post = state(&Fs::mount(&after, &MountOptions { read_only: false, time: 9 }).unwrap());
    assert_ne!(pre, post, "{name}: operation changed nothing");
    // Crash run.
    let tp = SimPmem::from_image(start, true);
    let mut fs = Fs::mount(&tp, &MountOptions { read_only: false, time: 9 }).unwrap();
    let checked = Rc::new(RefCell::new((0u64, 0u64, [0u64; 2])));
    let (pre2, post2, ck, nm) = (pre.clone(), post.clone(), checked.clone(), name.to_string());
    tp.set_fence_hook(Some(Box::new(move |v: &CrashView| {
        let mut c = ck.borrow_mut();
        c.0 += 1;
        for (i, mode) in modes.iter().enumerate() {
            if i >= 2 && v.pending.is_empty() {
                break;
            }
            let r = check_image(v.image(*mode), &pre2, &post2, &format!("{nm} fence {} {mode:?}", v.fence_no));
            c.1 += 1;
            c.2[r as usize] += 1;
        }
    })));
    op(&mut fs, &ctx).unwrap();
    tp.set_fence_hook(None);
    // And the final durable state is the post state.
    let r = check_image(tp.durable(), &pre, &post, &format!("{name} final"));
    assert_eq!(r, 1, "{name}: completed operation not durable");
    let c = *checked.borrow();
    assert!(c.2[0] > 0 && c.2[1] > 0, "{name}: saw only one side: {:?}", c.2);
    (c.0, c.1)
}

#[test]
fn crash_every_fence_every_op() {
    let mut total_points = 0;
    let mut total_states = 0;
    for (name, op) in ops() {
        let (p, s) = crash_op(name, base_setup, op);
        eprintln!("crash {name}: {p} persist points, {s} crash states");
        total_points += p;
        total_states += s;
    }
    eprintln!("crash test: {} operation kinds, {total_points} persist points, {total_states} crash states checked", ops().len());
    assert!(total_states > 1000);
}

/// The allocating operations again on a filesystem with a stripe unit of
/// 4 blocks (mkfs -d su=16k,sw=4): aligned allocation changes where blocks
/// go, not what a crash can show.
#[test]
fn crash_allocations_with_stripe_geometry() {
    let mut states = 0;
    let allocating = ["alloc_write_hole", "alloc_write_cow", "alloc_write_extsize_unit", "fallocate", "fallocate_keep_size", "unshare", "insert_range"];
    for (name, op) in ops().into_iter().filter(|(n, _)| allocating.contains(n)) {
        let (start, ctx) = start_image_on(new_fs_striped((4, 16)), base_setup);
        let (p, s) = crash_from(name, start, ctx, op, &MODES);
        eprintln!("crash {name} (stripe unit 4): {p} persist points, {s} crash states");
        states += s;
    }
    assert!(states > 100, "{states} crash states");
}

#[test]
fn crash_during_recovery_is_idempotent() {
    // Crash in the middle of an operation, then crash again at every fence of
    // the recovery itself: the next mount must still recover cleanly.
    let base = new_fs();
    let pm = SimPmem::from_image(base, false);
    let mut fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
    let mut ctx = Ctx { ino: BTreeMap::new() };
    base_setup(&mut fs, &mut ctx);
    fs.unmount(1).unwrap();
    let start = pm.snapshot();
    let refpm = SimPmem::from_image(start.clone(), false);
    let fs = Fs::mount(&refpm, &MountOptions::default()).unwrap();
    let pre = state(&fs);
    let tp = SimPmem::from_image(start, true);
    let mut fs = Fs::mount(&tp, &MountOptions::default()).unwrap();
    let images = Rc::new(RefCell::new(Vec::new()));
    let im = images.clone();
    tp.set_fence_hook(Some(Box::new(move |v: &CrashView| {
        if v.fence_no.is_multiple_of(3) {
            im.borrow_mut().push(v.image(CrashMode::AllStored));
        }
    })));
    let _ = fs.reflink(ctx.ino["a"], 0, ctx.ino["b"], 0, 6);
    tp.set_fence_hook(None);
    let mut n = 0;
    for img in images.borrow().iter().take(12) {
        let t2 = SimPmem::from_image(img.clone(), true);
        let inner = Rc::new(RefCell::new(Vec::new()));
        let i2 = inner.clone();
        t2.set_fence_hook(Some(Box::new(move |v: &CrashView| {
            i2.borrow_mut().push(v.image(CrashMode::Random(v.fence_no)));
        })));
        let _ = Fs::mount(&t2, &MountOptions::default());
        t2.set_fence_hook(None);
        for img2 in inner.borrow().iter() {
            let p3 = SimPmem::from_image(img2.clone(), false);
            let fs3 = Fs::mount(&p3, &MountOptions::default()).expect("mount after double crash");
            let rep = fsck(&p3, FsckOptions::default());
            assert_eq!(rep.exit_code, 0, "{}", rep.describe());
            let s = state(&fs3);
            // recovery rolled the reflink back unless it had committed
            assert!(s == pre || s.get("#ext 4") != pre.get("#ext 4"));
            n += 1;
        }
    }
    eprintln!("double-crash states checked: {n}");
    assert!(n > 10);
}

/// Operations that span several bounded transactions: every intermediate
/// commit is consistent, and the orphan list makes mount finish the job, so
/// after recovery the state is still exactly before or after.
#[test]
fn crash_multi_transaction_ops() {
    const FEW: [CrashMode; 3] = [CrashMode::DurableOnly, CrashMode::AllStored, CrashMode::Random(11)];
    let mut total = 0;
    for (name, op) in big_ops() {
        let (p, s) = crash_op_modes(name, big_setup, op, &FEW);
        eprintln!("crash {name}: {p} persist points, {s} crash states");
        assert!(p > 40, "{name} should span several transactions ({p} fences)");
        total += s;
    }
    eprintln!("multi-transaction crash states checked: {total}");
}

/// Collapse and insert of ~1500 extents span many bounded transactions and,
/// as in XFS, are not atomic across them: every crash state must mount, pass
/// fsck and be the file before, after, or in the documented intermediate
/// state of the shift (`is_shift_intermediate`), with every other file
/// untouched; and shared extents must still be shared (no block copied).
#[test]
fn crash_shift_ops() {
    const FEW: [CrashMode; 3] = [CrashMode::DurableOnly, CrashMode::AllStored, CrashMode::Random(13)];
    let mut total = 0;
    for sh in big_shifts() {
        let (start, ctx) = start_image(big_shift_setup);
        let ino = ctx.ino[sh.file];
        let refpm = SimPmem::from_image(start.clone(), false);
        let mut fs = Fs::mount(&refpm, &MountOptions { read_only: false, time: 9 }).unwrap();
        let pre = state(&fs);
        let pre_map = block_map(&fs, ino);
        let size0 = fs.read_inode(ino).unwrap().size;
        sh.run(&mut fs, &ctx).unwrap();
        let post = state(&fs);
        // the shift moved extents, it copied nothing: every data block is
        // the same physical block at its new offset (so shared stays shared)
        let post_map = block_map(&fs, ino);
        let c = sh.count as usize;
        let o = sh.lblk as usize;
        if sh.insert {
            assert_eq!(post_map[..o], pre_map[..o]);
            assert!(post_map[o..o + c].iter().all(|b| b.is_none()));
            assert_eq!(post_map[o + c..], pre_map[o..]);
        } else {
            assert_eq!(post_map[..o], pre_map[..o]);
            assert_eq!(post_map[o..], pre_map[o + c..]);
        }
        let tp = SimPmem::from_image(start, true);
        let mut fs = Fs::mount(&tp, &MountOptions { read_only: false, time: 9 }).unwrap();
        let seen = Rc::new(RefCell::new([0u64; 4]));
        let (s2, pre2, post2, map2) = (seen.clone(), pre.clone(), post.clone(), pre_map.clone());
        tp.set_fence_hook(Some(Box::new(move |v: &CrashView| {
            let mut c = s2.borrow_mut();
            c[3] += 1;
            for (i, mode) in FEW.iter().enumerate() {
                if i >= 2 && v.pending.is_empty() {
                    break;
                }
                let what = format!("{} fence {} {mode:?}", sh.name, v.fence_no);
                let pm = SimPmem::from_image(v.image(*mode), false);
                let fs = Fs::mount(&pm, &MountOptions { read_only: false, time: 9 })
                    .unwrap_or_else(|e| panic!("{what}: mount after crash failed: {e:?}"));
                let rep = fsck(&pm, FsckOptions::default());
                assert_eq!(rep.exit_code, 0, "{what}: fsck after recovery:\n{}", rep.describe());
                let s = state(&fs);
                let r = if s == pre2 {
                    0
                } else if s == post2 {
                    1
                } else if is_shift_intermediate(&fs, &sh, ino, size0, &map2, &pre2) {
                    2
                } else {
                    panic!("{what}: neither before, after, nor the documented intermediate state")
                };
                c[r] += 1;
            }
        })));
        sh.run(&mut fs, &ctx).unwrap();
        tp.set_fence_hook(None);
        assert_eq!(state(&Fs::mount(&SimPmem::from_image(tp.durable(), false), &MountOptions::default()).unwrap()), post);
        let c = *seen.borrow();
        eprintln!("crash {}: {} persist points, old/new/intermediate states {:?}", sh.name, c[3], &c[..3]);
        assert!(c[0] > 0 && c[1] > 0 && c[2] > 0, "{}: {:?}", sh.name, c);
        total += c[0] + c[1] + c[2];
    }
    eprintln!("shift crash states checked: {total}");
}
