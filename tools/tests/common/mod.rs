//! What the crash-point and error-path tests share: the starting
//! filesystem, its files, and the list of operations each test breaks.
#![allow(dead_code)] // each test crate uses its own subset

use ferrofs_engine::*;
use ferrofs_tools::harness::{self, dump};
use ferrofs_tools::SimPmem;
use std::collections::BTreeMap;

pub const T: Time = Time { sec: 5, nsec: 0 };
pub const MB: u64 = 1 << 20;

pub type Dump = BTreeMap<String, String>;

/// Logical dump plus every file's extent map (so allocation effects count too).
pub fn state<M: Media>(fs: &Fs<M>) -> Dump {
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

pub fn new_fs() -> Vec<u8> {
    new_fs_striped((0, 0))
}

/// `new_fs` with a stripe unit and width (mkfs -d su=,sw=), in blocks.
pub fn new_fs_striped(stripe: (u64, u64)) -> Vec<u8> {
    let pm = SimPmem::new(3 * MB);
    let o = FormatOptions { label: b"crash", uuid: [9; 16], size_bytes: 0, time: T, journal_slots: 64, stripe };
    Fs::format(&pm, &o).unwrap();
    pm.snapshot()
}

/// A fresh filesystem after `setup`, unmounted clean, and the names it made.
pub fn start_image(setup: Setup) -> (Vec<u8>, Ctx) {
    start_image_on(new_fs(), setup)
}

/// `start_image` on the freshly formatted `img`.
pub fn start_image_on(img: Vec<u8>, setup: Setup) -> (Vec<u8>, Ctx) {
    let pm = SimPmem::from_image(img, false);
    let mut fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
    let mut ctx = Ctx { ino: BTreeMap::new() };
    setup(&mut fs, &mut ctx);
    fs.unmount(1).unwrap();
    (pm.snapshot(), ctx)
}

pub fn file(fs: &mut Fs<&SimPmem>, dir: u64, name: &[u8], blocks: u64, fill: u8) -> u64 {
    let (ino, _) = fs.create(dir, name, &NewInode { mode: S_IFREG | 0o644, time: T, ..Default::default() }).unwrap();
    if blocks > 0 {
        let data: Vec<u8> = (0..blocks * BLOCK_SIZE).map(|i| fill ^ (i / 97) as u8).collect();
        harness::write(fs, ino, 0, &data, T).unwrap();
    }
    ino
}

pub struct Ctx {
    pub ino: BTreeMap<&'static str, u64>,
}

pub type Setup = fn(&mut Fs<&SimPmem>, &mut Ctx);
pub type Op = fn(&mut Fs<&SimPmem>, &Ctx) -> Result<()>;

pub fn base_setup(fs: &mut Fs<&SimPmem>, c: &mut Ctx) {
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
    // extent size hints: an empty file with a 16-block unit, a directory
    // its children inherit from, a clone with a 4-block CoW unit
    let h = file(fs, ROOT_INO, b"h", 0, 0);
    fs.set_flags_hints(h, IFLAG_EXTSIZE, 16, 0, T).unwrap();
    let hd = fs.mkdir(ROOT_INO, b"hd", &NewInode { mode: 0o755, time: T, ..Default::default() }).unwrap().0;
    fs.set_flags_hints(hd, IFLAG_EXTSZINHERIT | IFLAG_COWEXTSIZE, 8, 4, T).unwrap();
    let hc = file(fs, ROOT_INO, b"hc", 0, 0);
    fs.set_flags_hints(hc, IFLAG_COWEXTSIZE, 0, 4, T).unwrap();
    fs.reflink(a, 0, hc, 0, 6).unwrap();
    fs.set_size(hc, 6 * BLOCK_SIZE, T).unwrap();
    c.ino.insert("h", h);
    c.ino.insert("hd", hd);
    c.ino.insert("hc", hc);
    c.ino.insert("many", many);
    c.ino.insert("dir", d);
    c.ino.insert("sub", d2);
    c.ino.insert("a", a);
    c.ino.insert("b", b);
    c.ino.insert("shared", s);
    c.ino.insert("u", u);
}

pub fn ops() -> Vec<(&'static str, Op)> {
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
        // the rename and the whiteout that takes the source name, one transaction
        ("rename_whiteout", |fs, c| {
            let wh = NewInode { mode: 0, uid: 7, gid: 8, time: T, ..Default::default() };
            fs.rename_whiteout(ROOT_INO, b"a", c.ino["dir"], b"b", RenameFlags::default(), &wh).map(drop)
        }),
        ("rename_whiteout_dir_in_big_dir", |fs, c| {
            let wh = NewInode { mode: 0, time: T, ..Default::default() };
            fs.rename_whiteout(c.ino["dir"], b"sub", c.ino["many"], b"zz-sub", RenameFlags { noreplace: true, exchange: false }, &wh).map(drop)
        }),
        ("write_inode", |fs, c| {
            let mut i = fs.read_inode(c.ino["a"])?;
            i.uid = 77;
            i.mode = S_IFREG | 0o600;
            fs.write_inode(c.ino["a"], &i)
        }),
        ("alloc_write_hole", |fs, c| fs.alloc_write(c.ino["a"], 10, 3, AllocFlags::default()).map(|_| ())),
        ("alloc_write_unwritten", |fs, c| fs.alloc_write(c.ino["a"], 10, 3, AllocFlags { unwritten: true, huge_align: false, cow_unit: false }).map(|_| ())),
        ("alloc_write_cow", |fs, c| fs.alloc_write(c.ino["b"], 1, 2, AllocFlags::default()).map(|_| ())),
        ("set_hints", |fs, c| fs.set_flags_hints(c.ino["dir"], IFLAG_EXTSZINHERIT, 32, 0, T)),
        ("create_inheriting_hints", |fs, c| fs.create(c.ino["hd"], b"new", &NewInode { mode: S_IFREG | 0o600, time: T, ..Default::default() }).map(|_| ())),
        ("alloc_write_extsize_unit", |fs, c| fs.alloc_write(c.ino["h"], 5, 2, AllocFlags::default()).map(|_| ())),
        ("alloc_write_cow_unit", |fs, c| fs.alloc_write(c.ino["hc"], 1, 1, AllocFlags { cow_unit: true, ..Default::default() }).map(|_| ())),
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
        // an access ACL and the mode it implies, in one transaction
        ("xattr_set_with_mode", |fs, c| fs.xattr_set_with_mode(c.ino["a"], 4, b"acl", Some(&[3u8; 300][..]), S_IFREG | 0o640, T)),
        ("xattr_set_with_mode_external", |fs, c| fs.xattr_set_with_mode(c.ino["b"], 4, b"acl", Some(&[3u8; 9000][..]), S_IFREG | 0o604, T)),
        ("xattr_remove_with_mode", |fs, c| fs.xattr_set_with_mode(c.ino["a"], 1, b"user.big", None, S_IFREG | 0o600, T)),
        // collapse/insert: one extent of a (6 blocks), the shared pieces
        // of b (blocks 1-2 shared with "shared"), the unwritten u
        ("collapse_range", |fs, c| fs.collapse_range(c.ino["a"], 1, 2, T)),
        ("collapse_range_shared", |fs, c| fs.collapse_range(c.ino["b"], 0, 1, T)),
        ("insert_range", |fs, c| fs.insert_range(c.ino["a"], 2, 3, T)),
        ("insert_range_split_shared", |fs, c| fs.insert_range(c.ino["b"], 2, 4, T)),
        ("insert_range_unwritten", |fs, c| fs.insert_range(c.ino["u"], 1, 2, T)),
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

pub fn big_setup(fs: &mut Fs<&SimPmem>, c: &mut Ctx) {
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


/// Operations on `big_setup`'s file that span several bounded transactions.
pub fn big_ops() -> Vec<(&'static str, Op)> {
    vec![
        ("truncate_to_zero_many_extents", |fs, c| fs.set_size(c.ino["big"], 0, T)),
        ("unlink_evict_many_extents", |fs, _| {
            let i = fs.unlink(ROOT_INO, b"big", T)?;
            fs.evict(i)
        }),
    ]
}

/// `big_setup` with the big file's size covering all its extents, for the
/// shift operations (which need the range before EOF).
pub fn big_shift_setup(fs: &mut Fs<&SimPmem>, c: &mut Ctx) {
    big_setup(fs, c);
    fs.set_size(c.ino["big"], 3120 * BLOCK_SIZE, T).unwrap();
}

/// A multi-transaction shift and the states a crash or an error between its
/// steps may leave (Documentation/crash-consistency.md).
#[derive(Clone, Copy)]
pub struct Shift {
    pub name: &'static str,
    pub file: &'static str,
    pub insert: bool,
    pub lblk: u64,
    pub count: u64,
}

impl Shift {
    pub fn run(&self, fs: &mut Fs<&SimPmem>, c: &Ctx) -> Result<()> {
        if self.insert {
            fs.insert_range(c.ino[self.file], self.lblk, self.count, T)
        } else {
            fs.collapse_range(c.ino[self.file], self.lblk, self.count, T)
        }
    }
}

pub fn big_shifts() -> Vec<Shift> {
    vec![
        // ~1500 shared one-block extents move down, past the punched range
        Shift { name: "collapse_many_extents", file: "big", insert: false, lblk: 3, count: 4 },
        // ... and up, the first one split
        Shift { name: "insert_many_extents", file: "big", insert: true, lblk: 5, count: 3 },
    ]
}

/// A file's block map: per logical block, its (pblk, flags) or None.
pub fn block_map<M: Media>(fs: &Fs<M>, ino: u64) -> Vec<Option<(u64, u32)>> {
    let mut m = Vec::new();
    fs.extents(ino, &mut |e| {
        if m.len() < (e.lblk + e.len) as usize {
            m.resize((e.lblk + e.len) as usize, None);
        }
        for i in 0..e.len {
            m[(e.lblk + i) as usize] = Some((e.pblk + i, e.flags));
        }
    })
    .unwrap();
    m
}

/// The documented state of an interrupted shift of `s` on the file `ino`,
/// whose size and block map before it were `size0` and `pre`: every other
/// file as before (`pre_dump`), and
/// * collapse: the old size; the range partly punched (the rest as before),
///   or wholly punched with the extents below some X moved down by count
///   and those at or above X not moved (a hole of count blocks below X);
/// * insert: the new size; the extents at or above some X (>= lblk) moved
///   up by count, a hole of count blocks at X, the rest as before.
pub fn is_shift_intermediate<M: Media>(fs: &Fs<M>, s: &Shift, ino: u64, size0: u64, pre: &[Option<(u64, u32)>], pre_dump: &Dump) -> bool {
    let now = state(fs);
    let path = format!("/{}", s.file);
    for (k, v) in pre_dump {
        if k == &path || k == &format!("#ext {ino}") || k == "#sb" {
            continue;
        }
        if now.get(k) != Some(v) {
            return false;
        }
    }
    let size = fs.read_inode(ino).unwrap().size;
    let m = block_map(fs, ino);
    let get = |v: &[Option<(u64, u32)>], l: i64| if l < 0 { None } else { v.get(l as usize).copied().flatten() };
    let n = (m.len().max(pre.len()) as u64 + s.count + 1) as i64;
    let (o, c) = (s.lblk as i64, s.count as i64);
    if (0..o).any(|l| get(&m, l) != get(pre, l)) {
        return false;
    }
    if !s.insert {
        if size != size0 {
            return false;
        }
        // punch phase
        if (o..o + c).all(|l| get(&m, l).is_none() || get(&m, l) == get(pre, l)) && (o + c..n).all(|l| get(&m, l) == get(pre, l)) {
            return true;
        }
        // shift phase: X in [o+c, n]
        (o + c..=n).any(|x| {
            (o..x - c).all(|l| get(&m, l) == get(pre, l + c))
                && (x - c..x).all(|l| get(&m, l).is_none())
                && (x..n).all(|l| get(&m, l) == get(pre, l))
        })
    } else {
        if size != size0 + s.count * BLOCK_SIZE {
            return false;
        }
        (o..=n).any(|x| {
            (o..x).all(|l| get(&m, l) == get(pre, l))
                && (x..x + c).all(|l| get(&m, l).is_none())
                && (x + c..n + c).all(|l| get(&m, l) == get(pre, l - c))
        })
    }
}
