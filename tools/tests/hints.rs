//! Extent size hints (format v2): storage across remounts, XFS's rules for
//! setting them, inheritance at create, allocation in whole aligned units,
//! the CoW unit, version 1 images, and fsck's checks.

use ferrofs_engine::*;
use ferrofs_tools::fsck::{fsck, FsckOptions};
use ferrofs_tools::harness::{read_all, write};
use ferrofs_tools::{CrashMode, CrashView, SimPmem};
use std::cell::RefCell;
use std::rc::Rc;

const MB: u64 = 1 << 20;
const T: Time = Time { sec: 7, nsec: 0 };
const BS: u64 = BLOCK_SIZE;

fn new_fs(pm: &SimPmem) -> Fs<&SimPmem> {
    let o = FormatOptions { label: b"hints", uuid: [3; 16], size_bytes: 0, time: T, journal_slots: 64, stripe: (0, 0) };
    Fs::format(pm, &o).unwrap();
    Fs::mount(pm, &MountOptions::default()).unwrap()
}

fn reg() -> NewInode {
    NewInode { mode: S_IFREG | 0o644, time: T, ..Default::default() }
}

fn dirm() -> NewInode {
    NewInode { mode: S_IFDIR | 0o755, time: T, ..Default::default() }
}

fn extents(fs: &Fs<&SimPmem>, ino: u64) -> Vec<Extent> {
    let mut v = Vec::new();
    fs.extents(ino, &mut |e| v.push(*e)).unwrap();
    v
}

fn remount<'a>(pm: &'a SimPmem, fs: Fs<&'a SimPmem>) -> Fs<&'a SimPmem> {
    fs.unmount(8).unwrap();
    let rep = fsck(pm, FsckOptions::default());
    assert_eq!(rep.exit_code, 0, "{}", rep.describe());
    Fs::mount(pm, &MountOptions::default()).unwrap()
}

#[test]
fn hints_are_stored_and_survive_remount() {
    let pm = SimPmem::new(16 * MB);
    let mut fs = new_fs(&pm);
    let (f, _) = fs.create(ROOT_INO, b"f", &reg()).unwrap();
    let (d, _) = fs.mkdir(ROOT_INO, b"d", &dirm()).unwrap();
    fs.set_flags_hints(f, IFLAG_EXTSIZE | IFLAG_COWEXTSIZE | IFLAG_DAX, 16, 8, T).unwrap();
    fs.set_flags_hints(d, IFLAG_EXTSZINHERIT | IFLAG_COWEXTSIZE, 32, 4, T).unwrap();
    let fs = remount(&pm, fs);
    let i = fs.read_inode(f).unwrap();
    assert_eq!((i.flags, i.extsize, i.cowextsize), (IFLAG_EXTSIZE | IFLAG_COWEXTSIZE | IFLAG_DAX, 16, 8));
    assert_eq!((i.extsize_hint(), i.cowextsize_hint()), (16, 8));
    let i = fs.read_inode(d).unwrap();
    assert_eq!((i.flags, i.extsize, i.cowextsize), (IFLAG_EXTSZINHERIT | IFLAG_COWEXTSIZE, 32, 4));
    // a directory's hint governs no allocation of its own
    assert_eq!(i.extsize_hint(), 0);
    // setattr (write_inode) leaves the hints and their flags alone
    let mut fs = fs;
    let mut w = fs.read_inode(f).unwrap();
    w.flags = IFLAG_APPEND;
    w.uid = 42;
    fs.write_inode(f, &w).unwrap();
    let i = fs.read_inode(f).unwrap();
    assert_eq!((i.flags, i.extsize, i.cowextsize, i.uid), (IFLAG_APPEND | IFLAG_EXTSIZE | IFLAG_COWEXTSIZE, 16, 8, 42));
    // clearing the flags clears the hints
    fs.set_flags_hints(f, 0, 0, 0, T).unwrap();
    let fs = remount(&pm, fs);
    let i = fs.read_inode(f).unwrap();
    assert_eq!((i.flags, i.extsize, i.cowextsize), (0, 0, 0));
}

#[test]
fn setting_hints_follows_xfs_rules() {
    let pm = SimPmem::new(16 * MB);
    let mut fs = new_fs(&pm);
    let (f, _) = fs.create(ROOT_INO, b"f", &reg()).unwrap();
    let (d, _) = fs.mkdir(ROOT_INO, b"d", &dirm()).unwrap();
    let (l, _) = fs.symlink(ROOT_INO, b"l", b"f", &NewInode { mode: 0o777, time: T, ..Default::default() }).unwrap();
    let (n, _) = fs.create(ROOT_INO, b"fifo", &NewInode { mode: 0o010644, time: T, ..Default::default() }).unwrap();
    let inval = Err(Error::Invalid);
    // EXTSIZE on files only, EXTSZINHERIT on directories only
    assert_eq!(fs.set_flags_hints(d, IFLAG_EXTSIZE, 16, 0, T), inval);
    assert_eq!(fs.set_flags_hints(f, IFLAG_EXTSZINHERIT, 16, 0, T), inval);
    assert_eq!(fs.set_flags_hints(l, IFLAG_COWEXTSIZE, 0, 4, T), inval);
    assert_eq!(fs.set_flags_hints(n, IFLAG_EXTSIZE, 4, 0, T), inval);
    // a flag needs a value; a value without its flag is dropped
    assert_eq!(fs.set_flags_hints(f, IFLAG_EXTSIZE, 0, 0, T), inval);
    fs.set_flags_hints(f, 0, 16, 8, T).unwrap();
    assert_eq!(fs.read_inode(f).unwrap().extsize, 0);
    // at most half the filesystem (16 MiB = 4096 blocks)
    assert_eq!(fs.set_flags_hints(f, IFLAG_EXTSIZE, 2049, 0, T), inval);
    fs.set_flags_hints(f, IFLAG_EXTSIZE, 2048, 0, T).unwrap();
    // a file with blocks cannot change its hint, but may set the same again
    fs.set_flags_hints(f, IFLAG_EXTSIZE, 4, 0, T).unwrap();
    write(&mut fs, f, 0, &[1u8; 100], T).unwrap();
    assert_eq!(fs.set_flags_hints(f, IFLAG_EXTSIZE, 8, 0, T), inval);
    assert_eq!(fs.set_flags_hints(f, 0, 0, 0, T), inval);
    fs.set_flags_hints(f, IFLAG_EXTSIZE | IFLAG_IMMUTABLE, 4, 0, T).unwrap();
    fs.set_flags_hints(f, IFLAG_EXTSIZE, 4, 0, T).unwrap();
    // the CoW hint may change with blocks mapped (XFS allows it too)
    fs.set_flags_hints(f, IFLAG_EXTSIZE | IFLAG_COWEXTSIZE, 4, 16, T).unwrap();
    // a truncate to 0 frees the blocks, and the hint may change again
    fs.set_size(f, 0, T).unwrap();
    fs.set_flags_hints(f, IFLAG_EXTSIZE, 8, 0, T).unwrap();
    assert_eq!(fs.read_inode(f).unwrap().extsize, 8);
    // a directory with entries can change its hint any time
    fs.set_flags_hints(ROOT_INO, IFLAG_EXTSZINHERIT, 8, 0, T).unwrap();
    fs.set_flags_hints(ROOT_INO, IFLAG_EXTSZINHERIT, 16, 0, T).unwrap();
    let _ = remount(&pm, fs);
}

#[test]
fn new_files_inherit_from_their_directory() {
    let pm = SimPmem::new(16 * MB);
    let mut fs = new_fs(&pm);
    let (d, _) = fs.mkdir(ROOT_INO, b"d", &dirm()).unwrap();
    fs.set_flags_hints(d, IFLAG_EXTSZINHERIT | IFLAG_COWEXTSIZE, 16, 4, T).unwrap();
    let (f, _) = fs.create(d, b"f", &reg()).unwrap();
    let (sd, _) = fs.mkdir(d, b"sub", &dirm()).unwrap();
    let (g, _) = fs.create(sd, b"g", &reg()).unwrap();
    let (t, _) = fs.tmpfile(d, &reg()).unwrap();
    let (l, _) = fs.symlink(d, b"l", b"f", &NewInode { mode: 0o777, time: T, ..Default::default() }).unwrap();
    let (n, _) = fs.mknod(d, b"fifo", &NewInode { mode: 0o010644, time: T, ..Default::default() }).unwrap();
    let (plain, _) = fs.create(ROOT_INO, b"plain", &reg()).unwrap();
    let i = fs.read_inode(t).unwrap();
    assert_eq!((i.flags & IFLAG_HINTS, i.extsize, i.cowextsize), (IFLAG_EXTSIZE | IFLAG_COWEXTSIZE, 16, 4), "O_TMPFILE");
    let fs = remount(&pm, fs);
    let h = |ino| {
        let i = fs.read_inode(ino).unwrap();
        (i.flags & IFLAG_HINTS, i.extsize, i.cowextsize)
    };
    assert_eq!(h(f), (IFLAG_EXTSIZE | IFLAG_COWEXTSIZE, 16, 4));
    assert_eq!(h(sd), (IFLAG_EXTSZINHERIT | IFLAG_COWEXTSIZE, 16, 4));
    assert_eq!(h(g), (IFLAG_EXTSIZE | IFLAG_COWEXTSIZE, 16, 4));
    assert_eq!(h(l), (0, 0, 0));
    assert_eq!(h(n), (0, 0, 0));
    assert_eq!(h(plain), (0, 0, 0));
    // the symlink target still reads back (bytes 104..112 hold its
    // length there, not hints)
    let mut b = [0u8; 16];
    assert_eq!(fs.read_link(l, &mut b).unwrap(), 1);
}

#[test]
fn writes_allocate_whole_aligned_units() {
    let pm = SimPmem::new(16 * MB);
    let mut fs = new_fs(&pm);
    let (f, _) = fs.create(ROOT_INO, b"f", &reg()).unwrap();
    fs.set_flags_hints(f, IFLAG_EXTSIZE, 16, 0, T).unwrap();
    // one byte at block 21: the unit [16, 32) is allocated, block 21 written
    write(&mut fs, f, 21 * BS + 5, b"x", T).unwrap();
    let e = extents(&fs, f);
    assert_eq!(e.iter().map(|e| (e.lblk, e.len, e.flags)).collect::<Vec<_>>(), vec![(16, 5, EXT_UNWRITTEN), (21, 1, 0), (22, 10, EXT_UNWRITTEN)]);
    assert_eq!(e[0].pblk + 5, e[1].pblk, "one contiguous run");
    assert_eq!(e[1].pblk + 1, e[2].pblk, "one contiguous run");
    let i = fs.read_inode(f).unwrap();
    assert_eq!(i.size, 21 * BS + 6, "the unit does not move i_size");
    assert_eq!(i.blocks, 16);
    let data = read_all(&fs, f).unwrap();
    assert_eq!(data.len() as u64, i.size);
    assert!(data[..(21 * BS + 5) as usize].iter().all(|&b| b == 0));
    assert_eq!(data[(21 * BS + 5) as usize], b'x');
    // a later write inside the unit allocates nothing new: same blocks
    let p = e[0].pblk;
    write(&mut fs, f, 17 * BS, &[7u8; 4096], T).unwrap();
    let i = fs.read_inode(f).unwrap();
    assert_eq!(i.blocks, 16);
    assert_eq!(fs.map(f, 17, 1).unwrap().pblk, p + 1);
    // a write spanning two units (blocks 30..34) allocates [32, 48) too
    write(&mut fs, f, 30 * BS, &vec![9u8; 4 * 4096], T).unwrap();
    assert_eq!(fs.read_inode(f).unwrap().blocks, 32);
    let last = extents(&fs, f).last().copied().unwrap();
    assert_eq!((last.lblk + last.len, last.flags), (48, EXT_UNWRITTEN));
    // without a hint: exactly the written block
    let (g, _) = fs.create(ROOT_INO, b"g", &reg()).unwrap();
    write(&mut fs, g, 21 * BS, b"y", T).unwrap();
    assert_eq!(fs.read_inode(g).unwrap().blocks, 1);
    let fs = remount(&pm, fs);
    let data = read_all(&fs, f).unwrap();
    assert_eq!(data[(21 * BS + 5) as usize], b'x');
    assert!(data[(17 * BS) as usize..(18 * BS) as usize].iter().all(|&b| b == 7));
    assert!(data[(30 * BS) as usize..(34 * BS) as usize].iter().all(|&b| b == 9));
}

#[test]
fn unit_fills_only_holes_and_falls_back_when_space_is_short() {
    let pm = SimPmem::new(16 * MB);
    let mut fs = new_fs(&pm);
    let (f, _) = fs.create(ROOT_INO, b"f", &reg()).unwrap();
    // blocks 2 and 9 written before the hint is set would forbid setting
    // it, so make the file hinted with a small unit, then write around
    fs.set_flags_hints(f, IFLAG_EXTSIZE, 4, 0, T).unwrap();
    write(&mut fs, f, 2 * BS, &[1u8; 4096], T).unwrap();
    // [0, 4) allocated; now block 5 -> unit [4, 8)
    write(&mut fs, f, 5 * BS, &[2u8; 4096], T).unwrap();
    assert_eq!(fs.read_inode(f).unwrap().blocks, 8);
    let data = read_all(&fs, f).unwrap();
    assert!(data[(2 * BS) as usize..(3 * BS) as usize].iter().all(|&b| b == 1));
    assert!(data[(5 * BS) as usize..(6 * BS) as usize].iter().all(|&b| b == 2));
    // a unit bigger than half the free space: the write still succeeds,
    // allocating only what it needs
    let (g, _) = fs.create(ROOT_INO, b"g", &reg()).unwrap();
    fs.set_flags_hints(g, IFLAG_EXTSIZE, 2048, 0, T).unwrap();
    let (h, _) = fs.create(ROOT_INO, b"h", &reg()).unwrap();
    let free = fs.statfs().avail_blocks;
    fs.fallocate(h, 0, free - 1500, false).unwrap();
    write(&mut fs, g, 0, b"z", T).unwrap();
    assert_eq!(fs.read_inode(g).unwrap().blocks, 1);
    let _ = remount(&pm, fs);
}

#[test]
fn cow_breaks_sharing_a_whole_cow_unit() {
    let pm = SimPmem::new(16 * MB);
    let mut fs = new_fs(&pm);
    let (a, _) = fs.create(ROOT_INO, b"a", &reg()).unwrap();
    let data: Vec<u8> = (0..8 * BS).map(|i| (i / 4096) as u8 + 1).collect();
    write(&mut fs, a, 0, &data, T).unwrap();
    let (b, _) = fs.create(ROOT_INO, b"b", &reg()).unwrap();
    fs.set_flags_hints(b, IFLAG_COWEXTSIZE, 0, 4, T).unwrap();
    fs.reflink(a, 0, b, 0, 8).unwrap();
    fs.set_size(b, 8 * BS, T).unwrap();
    // without cow_unit (what the kernel asks today) one block is copied
    fs.alloc_write(b, 5, 1, AllocFlags::default()).unwrap();
    assert!(!fs.map(b, 5, 1).unwrap().shared && fs.map(b, 4, 1).unwrap().shared && fs.map(b, 6, 1).unwrap().shared);
    // with it, a write to block 1 unshares its whole CoW unit [0, 4)
    fs.alloc_write(b, 1, 1, AllocFlags { cow_unit: true, ..Default::default() }).unwrap();
    write(&mut fs, b, BS, &[0xee; 4096], T).unwrap();
    for l in 0..8 {
        assert_eq!(fs.map(b, l, 1).unwrap().shared, l >= 4 && l != 5, "block {l}");
    }
    assert_eq!(extents(&fs, b)[0].len, 4, "the unit is one new extent");
    // without the hint only the written block is copied
    let (c, _) = fs.create(ROOT_INO, b"c", &reg()).unwrap();
    fs.reflink(a, 0, c, 0, 8).unwrap();
    fs.set_size(c, 8 * BS, T).unwrap();
    write(&mut fs, c, BS, &[0xdd; 4096], T).unwrap();
    for l in 0..8 {
        assert_eq!(fs.map(c, l, 1).unwrap().shared, l != 1, "block {l}");
    }
    let fs = remount(&pm, fs);
    let mut want = data.clone();
    assert_eq!(read_all(&fs, a).unwrap(), want);
    want[BS as usize..2 * BS as usize].fill(0xee);
    assert_eq!(read_all(&fs, b).unwrap(), want);
    want[BS as usize..2 * BS as usize].fill(0xdd);
    assert_eq!(read_all(&fs, c).unwrap(), want);
}

fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn set_version(pm: &SimPmem, v: u32) {
    let mut b = [0u8; SB_SIZE];
    b.copy_from_slice(&pm.peek(0, SB_SIZE));
    put32(&mut b, 12, v);
    put32(&mut b, SB_CRC_OFF, 0);
    let c = sb_crc(&b);
    put32(&mut b, SB_CRC_OFF, c);
    pm.write(0, &b);
    pm.flush(0, SB_SIZE as u64);
    pm.fence();
}

#[test]
fn version_1_images_mount_without_hints_and_upgrade_at_the_first() {
    let pm = SimPmem::new(16 * MB);
    let mut fs = new_fs(&pm);
    let (f, _) = fs.create(ROOT_INO, b"f", &reg()).unwrap();
    write(&mut fs, f, 0, b"old", T).unwrap();
    fs.symlink(ROOT_INO, b"l", b"f", &NewInode { mode: 0o777, time: T, ..Default::default() }).unwrap();
    fs.unmount(1).unwrap();
    set_version(&pm, 1);
    let rep = fsck(&pm, FsckOptions::default());
    assert_eq!(rep.exit_code, 0, "{}", rep.describe());
    let mut fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
    assert_eq!(fs.superblock().version, 1);
    let i = fs.read_inode(f).unwrap();
    assert_eq!((i.extsize, i.cowextsize), (0, 0));
    // writing without hints keeps version 1 (an older module still mounts it)
    let (g, _) = fs.create(ROOT_INO, b"g", &reg()).unwrap();
    fs.unmount(2).unwrap();
    let mut fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
    assert_eq!(fs.superblock().version, 1);
    fs.set_flags_hints(g, IFLAG_EXTSIZE, 4, 0, T).unwrap();
    assert_eq!(fs.superblock().version, 2);
    let fs = remount(&pm, fs);
    assert_eq!(fs.superblock().version, 2);
    assert_eq!(fs.read_inode(g).unwrap().extsize, 4);
    fs.unmount(3).unwrap();
    // a version from the future is refused before anything is written
    set_version(&pm, FORMAT_VERSION + 1);
    assert!(matches!(Fs::mount(&pm, &MountOptions::default()), Err(Error::BadVersion { version: 4 })));
    set_version(&pm, 0);
    assert!(matches!(Fs::mount(&pm, &MountOptions::default()), Err(Error::BadVersion { version: 0 })));
}

/// Format version 3 lifted the largest file from 16 TiB to 2^63 - 1 bytes:
/// a version 2 image stays version 2 until the first size or extent past
/// 16 TiB, whose transaction raises it; fsck reports such a record on a
/// version 2 image; the largest file works at its last byte.
#[test]
fn version_2_images_upgrade_at_the_first_record_past_16_tib() {
    const TIB16: u64 = 1 << 44;
    let pm = SimPmem::new(16 * MB);
    let mut fs = new_fs(&pm);
    assert_eq!(fs.superblock().version, FORMAT_VERSION);
    let (f, _) = fs.create(ROOT_INO, b"f", &reg()).unwrap();
    let (g, _) = fs.create(ROOT_INO, b"g", &reg()).unwrap();
    fs.unmount(1).unwrap();
    set_version(&pm, 2);
    let mut fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
    // exactly 16 TiB, and a block ending at it, were always allowed
    fs.set_size(f, TIB16, T).unwrap();
    write(&mut fs, f, TIB16 - BS, b"last", T).unwrap();
    assert_eq!(fs.superblock().version, 2);
    // one byte more raises the version in the same transaction
    fs.set_size(f, TIB16 + 1, T).unwrap();
    assert_eq!(fs.superblock().version, 3);
    let fs = remount(&pm, fs);
    assert_eq!(fs.superblock().version, 3);
    // an extent past block 2^32 does too (the size with it)
    fs.unmount(2).unwrap();
    set_version(&pm, 2);
    let rep = fsck(&pm, FsckOptions::default());
    assert_ne!(rep.exit_code, 0, "a 16 TiB + 1 file on a version 2 image passed fsck");
    assert!(rep.describe().contains("larger than 16 TiB on a version 2 filesystem"), "{}", rep.describe());
    let mut fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
    fs.set_size(f, 0, T).unwrap();
    assert_eq!(fs.superblock().version, 2);
    write(&mut fs, g, TIB16, b"past", T).unwrap();
    assert_eq!(fs.superblock().version, 3);
    let mut fs = remount(&pm, fs);
    // the largest file: its last byte, then a truncate back over 2^51
    // blocks of address space that maps two blocks (extent seeks)
    let top = MAX_BYTES;
    assert_eq!(top, (1u64 << 63) - 1);
    write(&mut fs, f, top - 3, b"end", T).unwrap();
    assert_eq!(fs.read_inode(f).unwrap().size, top);
    assert!(matches!(fs.set_size(f, top + 1, T), Err(Error::FileTooBig)));
    assert!(matches!(write(&mut fs, f, top, b"x", T), Err(Error::FileTooBig)));
    let mut fs = remount(&pm, fs);
    let m = fs.map(f, (top - 1) / BS, 1).unwrap();
    assert_eq!((m.kind, m.lblk), (MapKind::Written, MAX_LBLK - 1));
    assert_eq!(pm.peek(m.pblk * BS + (top - 3) % BS, 3), b"end");
    fs.set_size(f, 0, T).unwrap();
    assert!(extents(&fs, f).is_empty());
    assert_eq!(fs.read_inode(f).unwrap().blocks, 0);
    let fs = remount(&pm, fs);
    let m = fs.map(g, TIB16 / BS, 1).unwrap();
    assert_eq!(m.kind, MapKind::Written);
    assert_eq!(pm.peek(m.pblk * BS, 4), b"past");
}

/// Crash at every fence of the transaction that first takes a version 2
/// image past 16 TiB (an extent past block 2^32 and the size with it):
/// every state is either the old file on a version 2 superblock or the new
/// one on version 3, never a record past 16 TiB on version 2, and fsck
/// passes each.
#[test]
fn crash_while_raising_the_version_to_3() {
    let pm = SimPmem::new(16 * MB);
    let mut fs = new_fs(&pm);
    let (f, _) = fs.create(ROOT_INO, b"f", &reg()).unwrap();
    write(&mut fs, f, 0, b"low", T).unwrap();
    fs.unmount(1).unwrap();
    set_version(&pm, 2);
    let tp = SimPmem::from_image(pm.snapshot(), true);
    let mut fs = Fs::mount(&tp, &MountOptions::default()).unwrap();
    let checked = Rc::new(RefCell::new((0u64, 0u64)));
    let ck = checked.clone();
    tp.set_fence_hook(Some(Box::new(move |v: &CrashView| {
        for mode in [CrashMode::DurableOnly, CrashMode::AllStored, CrashMode::Random(v.fence_no)] {
            let p = SimPmem::from_image(v.image(mode), false);
            let fs = Fs::mount(&p, &MountOptions::default()).unwrap();
            let rep = fsck(&p, FsckOptions::default());
            assert_eq!(rep.exit_code, 0, "fence {} {mode:?}:\n{}", v.fence_no, rep.describe());
            let big = fs.read_inode(f).unwrap().size > 1 << 44 || !extents(&fs, f).iter().all(|e| e.lblk + e.len <= 1 << 32);
            assert_eq!(fs.superblock().version, if big { 3 } else { 2 }, "fence {} {mode:?}", v.fence_no);
            let mut c = ck.borrow_mut();
            if big { c.1 += 1 } else { c.0 += 1 }
        }
    })));
    write(&mut fs, f, 1 << 44, b"high", T).unwrap();
    tp.set_fence_hook(None);
    let (old, new) = *checked.borrow();
    assert!(old > 0 && new > 0, "crash states: {old} before the raise, {new} after");
    eprintln!("version-raise crash states checked: {}", old + new);
}

#[test]
fn fsck_and_the_engine_refuse_impossible_hints() {
    let cases: [(&str, fn(&mut [u8])); 5] = [
        ("EXTSIZE on a directory", |v| {
            put32(v, 4, IFLAG_EXTSIZE);
            put32(v, INODE_EXTSIZE_OFF, 16)
        }),
        ("hint without flag", |v| put32(v, INODE_EXTSIZE_OFF, 16)),
        ("flag without hint", |v| put32(v, 4, IFLAG_EXTSZINHERIT)),
        ("CoW flag without hint", |v| put32(v, 4, IFLAG_COWEXTSIZE)),
        ("hint 2^32-1 blocks", |v| {
            put32(v, 4, IFLAG_EXTSZINHERIT);
            put32(v, INODE_EXTSIZE_OFF, u32::MAX)
        }),
    ];
    for (what, f) in cases {
        let pm = SimPmem::new(16 * MB);
        let mut fs = new_fs(&pm);
        let (d, _) = fs.mkdir(ROOT_INO, b"d", &dirm()).unwrap();
        let mut v = [0u8; INODE_SIZE];
        assert!(fs.tree_get(TreeId::Inode, Key::new(d, 0, 0), &mut v).unwrap());
        f(&mut v);
        fs.tree_update(TreeId::Inode, Key::new(d, 0, 0), &v).unwrap();
        assert!(matches!(fs.read_inode(d), Err(Error::Corrupt { .. })), "{what}: engine read it");
        fs.unmount(1).unwrap();
        let rep = fsck(&pm, FsckOptions::default());
        assert_ne!(rep.exit_code, 0, "{what}: fsck saw nothing");
        assert!(rep.describe().contains("hint") || rep.describe().contains("flag"), "{what}: {}", rep.describe());
    }
}
