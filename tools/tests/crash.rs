//! Crash-point enumeration. For every operation kind, crash at every fence
//! (persist point); for each point build several images: durable-only,
//! everything stored, and seeded random subsets of the not-yet-durable
//! 8-byte words (torn writes). Each image must mount (recovery), pass fsck,
//! and show the operation wholly present or wholly absent.

use ferrofs_engine::*;
use ferrofs_tools::fsck::{fsck, FsckOptions};
use ferrofs_tools::harness::{self, dump};
use ferrofs_tools::{CrashMode, CrashView, SimPmem};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

const T: Time = Time { sec: 5, nsec: 0 };
const MB: u64 = 1 << 20;

type Dump = BTreeMap<String, String>;

/// Logical dump plus every file's extent map (so allocation effects count too).
fn state<M: Media>(fs: &Fs<M>) -> Dump {
    let mut d = dump(fs).expect("dump");
    let mut inos: Vec<u64> = Vec::new();
    for v in d.values() {
        let ino: u64 = v.split_whitespace().next().unwrap()[4..].parse().unwrap();
        inos.push(ino);
    }
    for ino in inos {
        let mut s = String::new();
        fs.extents(ino, &mut |e| s += &format!("[{} {} {} {}]", e.lblk, e.pblk, e.len, e.flags)).unwrap();
        let i = fs.read_inode(ino).unwrap();
        d.insert(format!("#ext {ino}"), format!("blocks={} {s}", i.blocks));
    }
    let mut bad = String::new();
    fs.bad_blocks(&mut |p, l| bad += &format!("{p}+{l} ")).unwrap();
    d.insert("#bad".into(), bad);
    let sb = fs.superblock();
    d.insert("#sb".into(), format!("next_ino={} inodes={} free={}", sb.next_ino, sb.inode_count, sb.free_blocks));
    d
}

fn new_fs() -> Vec<u8> {
    let pm = SimPmem::new(3 * MB);
    let o = FormatOptions { label: b"crash", uuid: [9; 16], size_bytes: 0, time: T, journal_slots: 64 };
    Fs::format(&pm, &o).unwrap();
    pm.snapshot()
}

fn file(fs: &mut Fs<&SimPmem>, dir: u64, name: &[u8], blocks: u64, fill: u8) -> u64 {
    let (ino, _) = fs.create(dir, name, &NewInode { mode: S_IFREG | 0o644, time: T, ..Default::default() }).unwrap();
    if blocks > 0 {
        let data: Vec<u8> = (0..blocks * BLOCK_SIZE).map(|i| fill ^ (i / 97) as u8).collect();
        harness::write(fs, ino, 0, &data, T).unwrap();
    }
    ino
}

struct Ctx {
    ino: BTreeMap<&'static str, u64>,
}

type Setup = fn(&mut Fs<&SimPmem>, &mut Ctx);
type Op = fn(&mut Fs<&SimPmem>, &Ctx) -> Result<()>;

fn base_setup(fs: &mut Fs<&SimPmem>, c: &mut Ctx) {
    let d = fs.mkdir(ROOT_INO, b"dir", &NewInode { mode: 0o755, time: T, ..Default::default() }).unwrap().0;
    let d2 = fs.mkdir(d, b"sub", &NewInode { mode: 0o755, time: T, ..Default::default() }).unwrap().0;
    let a = file(fs, ROOT_INO, b"a", 6, 0x11);
    let b = file(fs, d, b"b", 3, 0x22);
    let s = file(fs, ROOT_INO, b"shared", 4, 0x33);
    fs.reflink(s, 0, b, 1, 2).unwrap();
    let u = file(fs, ROOT_INO, b"u", 0, 0);
    fs.fallocate(u, 0, 5, false).unwrap();
    fs.xattr_set(a, 1, b"user.big", &vec![7u8; 9000], XattrMode::Any).unwrap();
    // enough names to split dir and inode btree nodes
    let many = fs.mkdir(ROOT_INO, b"many", &NewInode { mode: 0o755, time: T, ..Default::default() }).unwrap().0;
    for i in 0..40 {
        fs.create(many, format!("f{i:03}").as_bytes(), &NewInode { mode: S_IFREG | 0o644, time: T, ..Default::default() }).unwrap();
    }
    c.ino.insert("many", many);
    c.ino.insert("dir", d);
    c.ino.insert("sub", d2);
    c.ino.insert("a", a);
    c.ino.insert("b", b);
    c.ino.insert("shared", s);
    c.ino.insert("u", u);
}

fn ops() -> Vec<(&'static str, Op)> {
    vec![
        ("create", |fs, _| fs.create(ROOT_INO, b"new", &NewInode { mode: S_IFREG | 0o600, time: T, ..Default::default() }).map(|_| ())),
        ("create_in_big_dir", |fs, c| {
            fs.create(c.ino["many"], b"zz-new-name", &NewInode { mode: S_IFREG | 0o600, time: T, ..Default::default() }).map(|_| ())
        }),
        ("rename_in_big_dir", |fs, c| fs.rename(c.ino["many"], b"f001", c.ino["many"], b"renamed-f001", RenameFlags::default(), T)),
        ("mkdir", |fs, c| fs.mkdir(c.ino["dir"], b"nd", &NewInode { mode: 0o700, time: T, ..Default::default() }).map(|_| ())),
        ("symlink_long", |fs, _| fs.symlink(ROOT_INO, b"ln", &[b'x'; 600], &NewInode { time: T, ..Default::default() }).map(|_| ())),
        ("tmpfile", |fs, _| fs.tmpfile(ROOT_INO, &NewInode { mode: S_IFREG, time: T, ..Default::default() }).map(|_| ())),
        ("link", |fs, c| fs.link(c.ino["a"], c.ino["dir"], b"a2", T)),
        ("unlink_last_link", |fs, _| fs.unlink(ROOT_INO, b"a", T).map(|_| ())),
        ("unlink_and_evict", |fs, _| {
            let i = fs.unlink(ROOT_INO, b"a", T)?;
            fs.evict(i)
        }),
        ("rmdir", |fs, c| fs.rmdir(c.ino["dir"], b"sub", T).map(|_| ())),
        ("rename_plain", |fs, c| fs.rename(ROOT_INO, b"a", c.ino["dir"], b"moved", RenameFlags::default(), T)),
        ("rename_replace", |fs, c| fs.rename(ROOT_INO, b"a", c.ino["dir"], b"b", RenameFlags::default(), T)),
        ("rename_exchange", |fs, c| fs.rename(ROOT_INO, b"a", c.ino["dir"], b"b", RenameFlags { exchange: true, noreplace: false }, T)),
        ("rename_dir", |fs, c| fs.rename(c.ino["dir"], b"sub", ROOT_INO, b"sub2", RenameFlags::default(), T)),
        ("write_inode", |fs, c| {
            let mut i = fs.read_inode(c.ino["a"])?;
            i.uid = 77;
            i.mode = S_IFREG | 0o600;
            fs.write_inode(c.ino["a"], &i)
        }),
        ("alloc_write_hole", |fs, c| fs.alloc_write(c.ino["a"], 10, 3, AllocFlags::default()).map(|_| ())),
        ("alloc_write_unwritten", |fs, c| fs.alloc_write(c.ino["a"], 10, 3, AllocFlags { unwritten: true, huge_align: false }).map(|_| ())),
        ("alloc_write_cow", |fs, c| fs.alloc_write(c.ino["b"], 1, 2, AllocFlags::default()).map(|_| ())),
        ("convert_unwritten", |fs, c| fs.convert_unwritten(c.ino["u"], 1, 2)),
        ("truncate_shrink", |fs, c| fs.set_size(c.ino["a"], 5000, T)),
        ("truncate_shrink_shared", |fs, c| fs.set_size(c.ino["b"], 100, T)),
        ("truncate_grow", |fs, c| fs.set_size(c.ino["a"], 100_000, T)),
        ("punch", |fs, c| fs.punch(c.ino["a"], 1, 3)),
        ("punch_shared", |fs, c| fs.punch(c.ino["shared"], 0, 2)),
        ("zero_range", |fs, c| fs.zero_range(c.ino["a"], 2, 2)),
        ("fallocate", |fs, c| fs.fallocate(c.ino["a"], 4, 6, false)),
        ("fallocate_keep_size", |fs, c| fs.fallocate(c.ino["b"], 8, 4, true)),
        ("reflink", |fs, c| fs.reflink(c.ino["a"], 0, c.ino["b"], 0, 6)),
        ("reflink_same_file", |fs, c| fs.reflink(c.ino["a"], 0, c.ino["a"], 3, 3)),
        ("dedupe", |fs, c| fs.dedupe(c.ino["shared"], 2, c.ino["b"], 0, 1)),
        ("unshare", |fs, c| fs.unshare(c.ino["shared"], 0, 4)),
        ("xattr_set_inline", |fs, c| fs.xattr_set(c.ino["b"], 0, b"user.x", b"hello", XattrMode::Any)),
        ("xattr_set_external", |fs, c| fs.xattr_set(c.ino["b"], 0, b"user.y", &[5u8; 20000], XattrMode::Any)),
        ("xattr_replace", |fs, c| fs.xattr_set(c.ino["a"], 1, b"user.big", b"small", XattrMode::Replace)),
        ("xattr_remove", |fs, c| fs.xattr_remove(c.ino["a"], 1, b"user.big")),
        ("quarantine_used", |fs, c| {
            let p = fs.map(c.ino["a"], 0, 1)?.pblk;
            fs.quarantine(p, 1)
        }),
        ("quarantine_free", |fs, _| {
            let f = fs.superblock().total_blocks - 10;
            fs.quarantine(f, 2)
        }),
    ]
}

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
    // Build the starting image.
    let base = new_fs();
    let pm = SimPmem::from_image(base, false);
    let mut fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
    let mut ctx = Ctx { ino: BTreeMap::new() };
    setup(&mut fs, &mut ctx);
    fs.unmount(1).unwrap();
    let start = pm.snapshot();
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

fn big_setup(fs: &mut Fs<&SimPmem>, c: &mut Ctx) {
    // a file with ~200 extents (every other block), partly shared
    let f = file(fs, ROOT_INO, b"big", 0, 0);
    for l in 0..60u64 {
        harness::write(fs, f, l * 2 * BLOCK_SIZE, &[l as u8; 64], T).unwrap();
    }
    // many more extents: share block 0 at 1500 further offsets
    for i in 60..1560u64 {
        fs.reflink(f, 0, f, i * 2, 1).unwrap();
    }
    let g = file(fs, ROOT_INO, b"g", 0, 0);
    fs.reflink(f, 0, g, 0, 100).unwrap();
    c.ino.insert("big", f);
    c.ino.insert("g", g);
}

/// Operations that span several bounded transactions: every intermediate
/// commit is consistent, and the orphan list makes mount finish the job, so
/// after recovery the state is still exactly before or after.
#[test]
fn crash_multi_transaction_ops() {
    const FEW: [CrashMode; 3] = [CrashMode::DurableOnly, CrashMode::AllStored, CrashMode::Random(11)];
    let ops: Vec<(&str, Op)> = vec![
        ("truncate_to_zero_many_extents", |fs, c| fs.set_size(c.ino["big"], 0, T)),
        ("unlink_evict_many_extents", |fs, _| {
            let i = fs.unlink(ROOT_INO, b"big", T)?;
            fs.evict(i)
        }),
    ];
    let mut total = 0;
    for (name, op) in ops {
        let (p, s) = crash_op_modes(name, big_setup, op, &FEW);
        eprintln!("crash {name}: {p} persist points, {s} crash states");
        assert!(p > 40, "{name} should span several transactions ({p} fences)");
        total += s;
    }
    eprintln!("multi-transaction crash states checked: {total}");
}
