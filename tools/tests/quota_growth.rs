//! `Fs::alloc_write_growth`, what disk quotas charge before an allocating
//! write runs: never less than the block count really grows (a user could
//! then pass a limit), and equal to it for holes, extent-size-hint units,
//! unwritten blocks and copy-on-write, so that a write into space already
//! charged is not refused.

use ferrofs_engine::*;
use ferrofs_tools::harness::write;
use ferrofs_tools::SimPmem;

const MB: u64 = 1 << 20;
const T: Time = Time { sec: 7, nsec: 0 };
const BS: u64 = BLOCK_SIZE;

fn new_fs(pm: &SimPmem) -> Fs<&SimPmem> {
    let o = FormatOptions { label: b"quota", uuid: [5; 16], size_bytes: 0, time: T, journal_slots: 64, stripe: (0, 0) };
    Fs::format(pm, &o).unwrap();
    Fs::mount(pm, &MountOptions::default()).unwrap()
}

fn reg() -> NewInode {
    NewInode { mode: S_IFREG | 0o644, time: T, ..Default::default() }
}

/// alloc_write's growth of the block count, and the bound asked before it.
fn grow(fs: &mut Fs<&SimPmem>, ino: u64, lblk: u64, count: u64, fl: AllocFlags) -> (u64, u64) {
    let bound = fs.alloc_write_growth(ino, lblk, count, fl).unwrap();
    let before = fs.read_inode(ino).unwrap().blocks;
    fs.alloc_write(ino, lblk, count, fl).unwrap();
    (fs.read_inode(ino).unwrap().blocks - before, bound)
}

#[test]
fn growth_is_exact_for_every_kind_of_range() {
    let pm = SimPmem::new(32 * MB);
    let mut fs = new_fs(&pm);
    let d = AllocFlags::default();
    let (f, _) = fs.create(ROOT_INO, b"f", &reg()).unwrap();
    // a hole: the blocks alloc_write fills (its first piece)
    assert_eq!(grow(&mut fs, f, 10, 4, d), (4, 4));
    // written and unshared: nothing
    assert_eq!(grow(&mut fs, f, 10, 4, d), (0, 0));
    // a hole that ends at a written block: only the hole's piece
    assert_eq!(grow(&mut fs, f, 7, 8, d), (3, 3));
    // unwritten (preallocated, already counted): converted, no growth
    fs.fallocate(f, 100, 16, true).unwrap();
    assert_eq!(grow(&mut fs, f, 104, 4, d), (0, 0));
    // shared: a copy replaces the shared blocks one for one
    let (g, _) = fs.create(ROOT_INO, b"g", &reg()).unwrap();
    fs.reflink(f, 7, g, 0, 7).unwrap();
    fs.set_size(g, 7 * BS, T).unwrap();
    assert_eq!(grow(&mut fs, g, 2, 3, d), (0, 0));
    // g's blocks 3..7 are f's 10..14, one shared extent: a CoW of three of
    // them is charged its three copies while it runs, and adds nothing
    assert_eq!(fs.alloc_write_charge(g, 3, 3, d).unwrap(), 3, "CoW is charged its copies");
    assert_eq!(grow(&mut fs, g, 3, 3, d), (0, 0));
    // and the charge of anything else is the growth
    assert_eq!(fs.alloc_write_charge(g, 3, 3, d).unwrap(), 0);
    assert_eq!(fs.alloc_write_charge(g, 40, 3, d).unwrap(), fs.alloc_write_growth(g, 40, 3, d).unwrap());
    // an unshare is charged its copies: the shared blocks of the range
    // (g's 0, 1 and 6 are still f's 7, 8 and 13), not its holes or
    // private blocks
    assert_eq!(fs.shared_blocks(g, 0, 64).unwrap(), 3);
    assert_eq!(fs.shared_blocks(f, 0, 200).unwrap(), 3, "the other owner's view");
    let before = fs.read_inode(g).unwrap().blocks;
    fs.unshare(g, 0, 64).unwrap();
    assert_eq!((fs.shared_blocks(g, 0, 64).unwrap(), fs.read_inode(g).unwrap().blocks), (0, before));
    // a PMD fault's 512-block hole
    let (h, _) = fs.create(ROOT_INO, b"h", &reg()).unwrap();
    let huge = AllocFlags { huge_align: true, ..Default::default() };
    assert_eq!(grow(&mut fs, h, 512, 512, huge), (512, 512));
}

#[test]
fn growth_covers_the_extent_size_hint_unit() {
    let pm = SimPmem::new(32 * MB);
    let mut fs = new_fs(&pm);
    let d = AllocFlags::default();
    let (f, _) = fs.create(ROOT_INO, b"f", &reg()).unwrap();
    fs.set_flags_hints(f, IFLAG_EXTSIZE, 16, 0, T).unwrap();
    // one block in the middle of [16, 32): the whole unit
    assert_eq!(grow(&mut fs, f, 21, 1, d), (16, 16));
    // inside the unit now: converted, nothing new
    assert_eq!(grow(&mut fs, f, 17, 1, d), (0, 0));
    // blocks 30..34 span two units: the first piece, [30, 32), is
    // unwritten in the first unit; then [32, 34) is a hole whose unit is
    // [32, 48)
    assert_eq!(grow(&mut fs, f, 30, 4, d), (0, 0));
    assert_eq!(grow(&mut fs, f, 32, 2, d), (16, 16));
    write(&mut fs, f, 30 * BS, &vec![9u8; 4 * 4096], T).unwrap();
    assert_eq!(fs.read_inode(f).unwrap().blocks, 32);
    // a bound is an upper bound where the unit does not fit the free
    // space and alloc_write falls back to the bare hole
    let (g, _) = fs.create(ROOT_INO, b"g", &reg()).unwrap();
    fs.set_flags_hints(g, IFLAG_EXTSIZE, 2048, 0, T).unwrap();
    let (h, _) = fs.create(ROOT_INO, b"h", &reg()).unwrap();
    let free = fs.statfs().avail_blocks;
    fs.fallocate(h, 0, free - 1500, false).unwrap();
    let (got, bound) = grow(&mut fs, g, 0, 1, d);
    assert_eq!(got, 1);
    assert!(bound >= got, "{bound} < {got}");
}

#[test]
fn hole_blocks_bound_preallocation_and_zero_range() {
    let pm = SimPmem::new(32 * MB);
    let mut fs = new_fs(&pm);
    let (f, _) = fs.create(ROOT_INO, b"f", &reg()).unwrap();
    write(&mut fs, f, 4 * BS, &vec![1u8; 4 * 4096], T).unwrap(); // [4, 8)
    fs.fallocate(f, 20, 5, true).unwrap(); // [20, 25) unwritten
    // [0, 32): 32 - 4 - 5 holes
    assert_eq!(fs.hole_blocks(f, 0, 32).unwrap(), 23);
    let before = fs.read_inode(f).unwrap().blocks;
    fs.fallocate(f, 0, 32, true).unwrap();
    assert_eq!(fs.read_inode(f).unwrap().blocks - before, 23);
    // zero_range of [2, 40): 8 holes past 32 are added, the rest re-made
    assert_eq!(fs.hole_blocks(f, 2, 38).unwrap(), 8);
    let before = fs.read_inode(f).unwrap().blocks;
    fs.zero_range(f, 2, 38).unwrap();
    assert_eq!(fs.read_inode(f).unwrap().blocks - before, 8);
    // a sparse 2^40-block range costs its extents, not its length
    assert_eq!(fs.hole_blocks(f, 0, 1 << 40).unwrap(), (1 << 40) - 40);
}

#[test]
fn growth_rejects_what_alloc_write_rejects() {
    let pm = SimPmem::new(16 * MB);
    let fs = new_fs(&pm);
    assert!(fs.alloc_write_growth(ROOT_INO, 0, 1, AllocFlags::default()).is_err(), "a directory has no data blocks");
    assert!(fs.alloc_write_growth(999_999, 0, 1, AllocFlags::default()).is_err());
    assert!(fs.alloc_write_growth(ROOT_INO, MAX_LBLK, 1, AllocFlags::default()).is_err());
    assert!(fs.hole_blocks(ROOT_INO, 0, 1).is_err());
}

/// `Fs::inodes_after`, the walk the quota recount at mount makes: every
/// live inode once, in order, batch after batch, orphans included, with
/// the owners and block counts a recount sums.
#[test]
fn inodes_after_walks_every_inode_once() {
    let pm = SimPmem::new(32 * MB);
    let mut fs = new_fs(&pm);
    let mut want = vec![ROOT_INO];
    let d = fs.create(ROOT_INO, b"d", &NewInode { mode: S_IFDIR | 0o755, time: T, ..Default::default() }).unwrap().0;
    want.push(d);
    for i in 0..20u32 {
        let name = format!("f{i}");
        let a = NewInode { uid: 1000 + i % 3, gid: 50 + i % 2, ..reg() };
        let (f, _) = fs.create(d, name.as_bytes(), &a).unwrap();
        write(&mut fs, f, 0, &vec![7u8; (i as usize + 1) * BS as usize], T).unwrap();
        want.push(f);
    }
    // an evicted file is gone, an orphan (unlinked, not evicted) is not
    let gone = fs.unlink(d, b"f3", T).unwrap();
    fs.evict(gone).unwrap();
    want.retain(|&x| x != gone);
    fs.unlink(d, b"f4", T).unwrap();
    want.sort_unstable();

    let mut seen = Vec::new();
    let mut per_uid = std::collections::BTreeMap::new();
    let mut batch = [(0u64, Inode::default()); 3];
    let mut after = 0;
    loop {
        let n = fs.inodes_after(after, &mut batch).unwrap();
        if n == 0 {
            break;
        }
        for &(ino, i) in &batch[..n] {
            assert_eq!(i, fs.read_inode(ino).unwrap());
            seen.push(ino);
            if i.mode & S_IFMT == S_IFREG {
                *per_uid.entry(i.uid).or_insert(0) += i.blocks;
            }
        }
        after = batch[n - 1].0;
    }
    assert_eq!(seen, want);
    // files i = 0..20 hold i + 1 blocks each, f3 evicted: uid 1000 + i % 3
    let mut expect = std::collections::BTreeMap::new();
    for i in (0..20u32).filter(|&i| i != 3) {
        *expect.entry(1000 + i % 3).or_insert(0) += u64::from(i) + 1;
    }
    assert_eq!(per_uid, expect);
    assert_eq!(fs.inodes_after(u64::MAX, &mut batch).unwrap(), 0);
    assert_eq!(fs.inodes_after(*want.last().unwrap(), &mut batch).unwrap(), 0);
}
