//! Allocator: 2 MiB aligned runs, fragmentation fallback, ENOSPC leaves a
//! consistent filesystem, frees come back; poisoned media gives EIO.

mod common;

use ferrofs_engine::*;
use ferrofs_tools::fsck::{fsck, FsckOptions};
use ferrofs_tools::{harness, SimPmem};

const T: Time = Time { sec: 1, nsec: 0 };

fn fs_on(pm: &SimPmem) -> Fs<&SimPmem> {
    fs_striped(pm, (0, 0))
}

fn newfile(fs: &mut Fs<&SimPmem>, name: &str) -> u64 {
    fs.create(ROOT_INO, name.as_bytes(), &NewInode { mode: S_IFREG | 0o644, time: T, ..Default::default() }).unwrap().0
}

/// Creates empty files until one fails: what is left of the metadata
/// reserve becomes btree nodes, and the filesystem is full.
fn fill_with_empty_files(fs: &mut Fs<&SimPmem>) {
    let mut n = 0;
    while fs.create(ROOT_INO, format!("m{n}").as_bytes(), &NewInode { mode: S_IFREG, time: T, ..Default::default() }).is_ok() {
        n += 1;
    }
}

#[test]
fn huge_aligned_allocation() {
    let pm = SimPmem::new(32 << 20);
    let mut fs = fs_on(&pm);
    let f = newfile(&mut fs, "big");
    let m = fs.alloc_write(f, 512, 1024, AllocFlags { unwritten: true, huge_align: true, cow_unit: false }).unwrap();
    assert_eq!(m.kind, MapKind::Unwritten);
    assert_eq!(m.count, 512);
    assert_eq!(m.pblk % 512, 0, "not 2 MiB aligned: {m:?}");
    let m2 = fs.alloc_write(f, 1024, 512, AllocFlags { unwritten: false, huge_align: true, cow_unit: false }).unwrap();
    assert_eq!((m2.pblk % 512, m2.count, m2.kind), (0, 512, MapKind::Written));
    fs.convert_unwritten(f, 512, 512).unwrap();
    assert_eq!(fs.map(f, 600, 1).unwrap().kind, MapKind::Written);
    assert_eq!(fsck(&pm, FsckOptions::default()).exit_code, 0);
}

#[test]
fn fragmentation_fallback_and_enospc() {
    let pm = SimPmem::new(8 << 20);
    let mut fs = fs_on(&pm);
    let free0 = fs.statfs().free_blocks;
    // fragment: 1-block files, delete every other one
    let mut files = Vec::new();
    let mut i = 0;
    loop {
        let f = match fs.create(ROOT_INO, format!("s{i}").as_bytes(), &NewInode { mode: S_IFREG, time: T, ..Default::default() }) {
            Ok((f, _)) => f,
            Err(Error::NoSpace) => break,
            Err(e) => panic!("{e:?}"),
        };
        match fs.alloc_write(f, 0, 1, AllocFlags::default()) {
            Ok(_) => files.push((i, f)),
            Err(Error::NoSpace) => {
                files.push((i, f));
                break;
            }
            Err(e) => panic!("{e:?}"),
        }
        i += 1;
    }
    assert_eq!(fsck(&pm, FsckOptions::default()).exit_code, 0);
    for (n, (i, f)) in files.iter().enumerate() {
        if n % 2 == 0 {
            let v = fs.unlink(ROOT_INO, format!("s{i}").as_bytes(), T).unwrap();
            assert_eq!(v, *f);
            fs.evict(v).unwrap();
        }
    }
    // a huge request falls back to whatever runs exist
    let big = newfile(&mut fs, "big");
    let m = fs.alloc_write(big, 0, 512, AllocFlags { unwritten: false, huge_align: true, cow_unit: false }).unwrap();
    assert!(m.count >= 1 && m.count < 512);
    // fill up: ENOSPC eventually, and the filesystem stays consistent
    let mut l = m.count;
    loop {
        match harness::write(&mut fs, big, l * BLOCK_SIZE, &[7u8; 4096], T) {
            Ok(()) => l += 1,
            Err(Error::NoSpace) => break,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(fsck(&pm, FsckOptions::default()).exit_code, 0, "{}", fsck(&pm, FsckOptions::default()).describe());
    // everything frees back
    for (n, (i, _)) in files.iter().enumerate() {
        if n % 2 == 1 {
            let v = fs.unlink(ROOT_INO, format!("s{i}").as_bytes(), T).unwrap();
            fs.evict(v).unwrap();
        }
    }
    let v = fs.unlink(ROOT_INO, b"big", T).unwrap();
    fs.evict(v).unwrap();
    let m = fs.unmount(0).unwrap();
    let fs = Fs::mount(m, &MountOptions::default()).unwrap();
    assert_eq!(fs.statfs().free_blocks, free0);
    assert_eq!(fs.statfs().files, 1);
    assert_eq!(fsck(&pm, FsckOptions::default()).exit_code, 0);
}

#[test]
fn poisoned_media_is_eio_not_panic() {
    let pm = SimPmem::new(8 << 20);
    let mut fs = fs_on(&pm);
    let f = newfile(&mut fs, "f");
    harness::write(&mut fs, f, 0, &[1u8; 8192], T).unwrap();
    let p = fs.map(f, 0, 1).unwrap().pblk;
    pm.poison(p * BLOCK_SIZE + 100, 8);
    assert!(matches!(harness::read_all(&fs, f), Err(Error::Io { .. })));
    // CoW from a poisoned block fails cleanly (rolled back)
    let g = newfile(&mut fs, "g");
    fs.reflink(f, 0, g, 0, 2).unwrap();
    assert!(matches!(fs.alloc_write(g, 0, 1, AllocFlags::default()), Err(Error::Io { .. })));
    // a poisoned btree node
    let root = fs.tree_root(TreeId::Dir).root;
    pm.poison(root * BLOCK_SIZE + 200, 8);
    let m2 = fs.into_media();
    match Fs::mount(m2, &MountOptions::default()) {
        Err(Error::Io { .. }) => {}
        Ok(fs) => assert!(matches!(fs.lookup(ROOT_INO, b"f"), Err(Error::Io { .. }))),
        Err(e) => panic!("{e:?}"),
    }
}

#[test]
fn owners_finds_every_sharer_after_remount() {
    let pm = SimPmem::new(8 << 20);
    let mut fs = fs_on(&pm);
    let a = newfile(&mut fs, "a");
    harness::write(&mut fs, a, 0, &[5u8; 5 * 4096], T).unwrap();
    let b = newfile(&mut fs, "b");
    let c = newfile(&mut fs, "c");
    fs.reflink(a, 1, b, 10, 3).unwrap();
    fs.reflink(a, 2, c, 0, 1).unwrap();
    let p = fs.map(a, 2, 1).unwrap().pblk;
    let m = fs.unmount(0).unwrap();
    let fs = Fs::mount(m, &MountOptions::default()).unwrap();
    let mut seen = Vec::new();
    fs.owners(p, 1, &mut |ino, lblk, pblk, len| seen.push((ino, lblk + (p - pblk), len))).unwrap();
    seen.sort();
    let mut want = vec![(a, 2), (b, 11), (c, 0)];
    want.sort();
    assert_eq!(seen.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(), want);
    assert!(fs.map(b, 11, 1).unwrap().shared);
}

#[test]
fn truncate_up_keeps_preallocation_truncate_down_frees() {
    let pm = SimPmem::new(8 << 20);
    let mut fs = fs_on(&pm);
    let f = newfile(&mut fs, "p");
    fs.fallocate(f, 4, 4, true).unwrap();
    assert_eq!(fs.read_inode(f).unwrap().size, 0);
    fs.set_size(f, 5 * BLOCK_SIZE + 10, T).unwrap();
    assert_eq!(fs.read_inode(f).unwrap().blocks, 4);
    assert_eq!(fs.map(f, 7, 1).unwrap().kind, MapKind::Unwritten);
    fs.set_size(f, 100, T).unwrap();
    assert_eq!(fs.read_inode(f).unwrap().blocks, 0);
    assert_eq!(fsck(&pm, FsckOptions::default()).exit_code, 0);
}

/// xfstests generic/449: an ACL that does not fit (ENOSPC) must not leave
/// the mode it implies behind; the ACL and the mode are one transaction.
#[test]
fn acl_and_mode_fail_together_on_enospc() {
    let pm = SimPmem::new(8 << 20);
    let mut fs = fs_on(&pm);
    let f = newfile(&mut fs, "f");
    let mut i = fs.read_inode(f).unwrap();
    i.mode = S_IFREG | 0o700;
    fs.write_inode(f, &i).unwrap();
    // fill the device with data, then with external xattrs, until ENOSPC
    let mut l = 0;
    while harness::write(&mut fs, f, l * BLOCK_SIZE, &[1u8; 4096], T).is_ok() {
        l += 1;
    }
    let mut n = 0;
    loop {
        match fs.xattr_set(f, 1, format!("trusted.fill{n}").as_bytes(), &[9u8; 5000], XattrMode::Any) {
            Ok(()) => n += 1,
            Err(Error::NoSpace) => break,
            Err(e) => panic!("{e:?}"),
        }
    }
    let r = fs.xattr_set_with_mode(f, 4, b"acl", Some(&[3u8; 6000]), S_IFREG | 0o740, Time { sec: 9, nsec: 0 });
    assert_eq!(r, Err(Error::NoSpace));
    let i = fs.read_inode(f).unwrap();
    assert_eq!(i.mode, S_IFREG | 0o700, "the mode changed although the ACL was not stored");
    assert_eq!(i.ctime, T);
    assert_eq!(fs.xattr_get(f, 4, b"acl", &mut []), Err(Error::NoData));
    // room again: both land
    let v = fs.unlink(ROOT_INO, b"f", T).unwrap();
    fs.evict(v).unwrap();
    let g = newfile(&mut fs, "g");
    fs.xattr_set_with_mode(g, 4, b"acl", Some(&[3u8; 6000]), S_IFREG | 0o740, Time { sec: 9, nsec: 0 }).unwrap();
    let i = fs.read_inode(g).unwrap();
    assert_eq!((i.mode, i.ctime), (S_IFREG | 0o740, Time { sec: 9, nsec: 0 }));
    assert_eq!(fs.xattr_get(g, 4, b"acl", &mut []), Ok(6000));
    assert_eq!(fsck(&pm, FsckOptions::default()).exit_code, 0);
}

/// Collapse and insert on a full filesystem: a shift that splits an
/// extent adds a record, and a record may split a btree node, which needs a
/// block. Repeated shifts on a full device until one gets ENOSPC: it stops
/// between two committed steps (or before the first), the filesystem stays
/// consistent (fsck) and the file is old or in the documented intermediate
/// state, nothing else changed; and the next shift of the other kind, which
/// needs no new block once the first one failed, still works or fails alike.
#[test]
fn shift_ops_on_a_full_filesystem() {
    use common::{block_map, is_shift_intermediate, new_fs, state, Ctx, Shift};
    for insert in [true, false] {
        let pm = SimPmem::from_image(new_fs(), false);
        let mut fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
        let f = newfile(&mut fs, "s");
        // 3-block extents with a hole after each: every shift at 4k+1 splits one
        for k in 0..150u64 {
            harness::write(&mut fs, f, 4 * k * BLOCK_SIZE, &[k as u8; 3 * BLOCK_SIZE as usize], T).unwrap();
        }
        let fill = newfile(&mut fs, "fill");
        let mut l = 0;
        loop {
            match fs.alloc_write(fill, l, fs.statfs().free_blocks.max(1), AllocFlags::default()) {
                Ok(m) => l += m.count,
                Err(Error::NoSpace) => break,
                Err(e) => panic!("{e:?}"),
            }
        }
        // and the metadata reserve with btree nodes: empty files
        fill_with_empty_files(&mut fs);
        assert!(fs.superblock().free_blocks < 4, "{}", fs.superblock().free_blocks);
        let mut ctx = Ctx { ino: Default::default() };
        ctx.ino.insert("s", f);
        let (mut done, mut nospc) = (0, 0);
        for k in 0..140u64 {
            // the middle block of extent k, which the k shifts before moved
            let at = if insert { 5 * k + 1 } else { 3 * k + 1 };
            let sh = Shift { name: "full", file: "s", insert, lblk: at, count: 1 };
            let pre = state(&fs);
            let pre_map = block_map(&fs, f);
            let size0 = fs.read_inode(f).unwrap().size;
            match sh.run(&mut fs, &ctx) {
                Ok(()) => done += 1,
                Err(Error::NoSpace) => {
                    nospc += 1;
                    let s = state(&fs);
                    assert!(s == pre || is_shift_intermediate(&fs, &sh, f, size0, &pre_map, &pre), "insert {insert} k {k}");
                    let rep = fsck(&pm, FsckOptions::default());
                    assert_eq!(rep.exit_code, 0, "insert {insert} k {k}:\n{}", rep.describe());
                    if nospc > 3 {
                        break;
                    }
                }
                Err(e) => panic!("{e:?}"),
            }
        }
        let rep = fsck(&pm, FsckOptions::default());
        assert_eq!(rep.exit_code, 0, "{}", rep.describe());
        eprintln!("{} on a full filesystem: {done} completed, {nospc} stopped with ENOSPC", if insert { "insert" } else { "collapse" });
        assert!(nospc > 0 && done > 0);
    }
}

/// `written_run` (the kernel's per-inode extent cache fills from it) only
/// ever answers written blocks nobody else shares, and agrees with `map`.
#[test]
fn written_run_is_written_and_unshared_only() {
    let pm = SimPmem::new(8 << 20);
    let mut fs = fs_on(&pm);
    let a = newfile(&mut fs, "a");
    harness::write(&mut fs, a, 0, &[5u8; 8 * 4096], T).unwrap();
    let whole = fs.written_run(a, 5).unwrap().expect("written, unshared");
    assert_eq!((whole.lblk, whole.count, whole.kind, whole.shared), (0, 8, MapKind::Written, false));
    assert_eq!(whole.pblk + 5, fs.map(a, 5, 1).unwrap().pblk);
    // a hole and an unwritten extent are not cached
    assert_eq!(fs.written_run(a, 20).unwrap(), None);
    fs.fallocate(a, 20, 4, true).unwrap();
    assert_eq!(fs.map(a, 21, 1).unwrap().kind, MapKind::Unwritten);
    assert_eq!(fs.written_run(a, 21).unwrap(), None);
    // share block 3: it is no longer a cacheable run, the blocks after it are
    let b = newfile(&mut fs, "b");
    fs.reflink(a, 3, b, 0, 1).unwrap();
    assert_eq!(fs.written_run(a, 3).unwrap(), None);
    assert_eq!(fs.written_run(b, 0).unwrap(), None);
    let tail = fs.written_run(a, 4).unwrap().expect("blocks 4.. are still exclusive");
    assert_eq!((tail.lblk, tail.count), (4, 4));
    assert_eq!(tail.pblk, fs.map(a, 4, 1).unwrap().pblk);
    // CoW of the shared block makes the whole file exclusive again
    fs.alloc_write(a, 3, 1, AllocFlags::default()).unwrap();
    for l in 0..8 {
        let r = fs.written_run(a, l).unwrap().expect("exclusive again");
        let m = fs.map(a, l, 1).unwrap();
        assert_eq!(r.pblk + (l - r.lblk), m.pblk, "block {l}");
        assert!(!m.shared);
    }
}

/// `mapped_end` is one past the last mapped block; freeing an unlinked
/// file in steps (punches from the end, then evict), as the kernel does to
/// release its engine lock between steps, leaves a clean filesystem with
/// every block back.
#[test]
fn mapped_end_and_stepwise_free() {
    let pm = SimPmem::new(16 << 20);
    let mut fs = fs_on(&pm);
    let free0 = fs.statfs().free_blocks;
    let a = newfile(&mut fs, "a");
    assert_eq!(fs.mapped_end(a).unwrap(), 0);
    harness::write(&mut fs, a, 0, &[1u8; 10 * 4096], T).unwrap();
    harness::write(&mut fs, a, 700 * 4096, &[2u8; 3 * 4096], T).unwrap();
    assert_eq!(fs.mapped_end(a).unwrap(), 703);
    // next_mapped skips holes and clamps to the start of the range
    assert_eq!(fs.next_mapped(a, 0, 703).unwrap(), Some(0));
    assert_eq!(fs.next_mapped(a, 5, 703).unwrap(), Some(5));
    assert_eq!(fs.next_mapped(a, 10, 703).unwrap(), Some(700));
    assert_eq!(fs.next_mapped(a, 10, 700).unwrap(), None, "the range ends before the extent");
    assert_eq!(fs.next_mapped(a, 703, u64::MAX).unwrap(), None);
    let b = newfile(&mut fs, "b");
    fs.reflink(a, 0, b, 0, 4).unwrap();
    fs.set_size(b, 4 * 4096, T).unwrap();
    assert_eq!(fs.mapped_end(b).unwrap(), 4);
    fs.unlink(ROOT_INO, b"a", T).unwrap();
    let mut hi = fs.mapped_end(a).unwrap();
    while hi > 0 {
        let lo = hi.saturating_sub(256);
        fs.punch(a, lo, hi - lo).unwrap();
        hi = lo;
    }
    assert_eq!(fs.mapped_end(a).unwrap(), 0);
    fs.evict(a).unwrap();
    assert_eq!(fs.read_inode(b).unwrap().blocks, 4, "the clone keeps its blocks");
    assert!(harness::read_all(&fs, b).unwrap() == vec![1u8; 4 * 4096], "the clone's bytes changed");
    fs.unlink(ROOT_INO, b"b", T).unwrap();
    fs.evict(b).unwrap();
    assert_eq!(fs.statfs().free_blocks, free0);
    fs.unmount(2).unwrap();
    assert_eq!(fsck(&pm, FsckOptions::default()).exit_code, 0);
}

fn fs_striped(pm: &SimPmem, stripe: (u64, u64)) -> Fs<&SimPmem> {
    let o = FormatOptions { label: b"", uuid: [2; 16], size_bytes: 0, time: T, journal_slots: 64, stripe };
    Fs::format(pm, &o).unwrap();
    Fs::mount(pm, &MountOptions::default()).unwrap()
}

/// generic/223's question, for every stripe unit it asks about: each
/// file's first extent of a stripe unit or more starts on a multiple of the
/// unit, written or preallocated, whatever smaller files left in between;
/// a request smaller than a unit is not held to it; a file that grows
/// goes on where it ended; the geometry survives a remount.
#[test]
fn stripe_unit_aligns_first_extents() {
    for su in [2u64, 4, 8, 16, 32, 3, 24] {
        let pm = SimPmem::new(64 << 20);
        let mut fs = fs_striped(&pm, (su, su * 4));
        assert_eq!(fs.stripe(), (su, su * 4));
        let mut small_unaligned = 0;
        for (i, mult) in [1u64, 2, 8, 1, 3].into_iter().enumerate() {
            for unwritten in [false, true] {
                let f = newfile(&mut fs, &format!("f{su}-{i}-{unwritten}"));
                let m = fs.alloc_write(f, 0, su * mult, AllocFlags { unwritten, ..Default::default() }).unwrap();
                assert_eq!(m.pblk % su, 0, "su {su}, {mult} units, unwritten {unwritten}: {m:?}");
                assert_eq!(m.count, su * mult, "su {su}: one extent: {m:?}");
                // one-block files between two: the next unit-sized one
                // must skip what they leave; they are not held to the unit
                for k in 0..2 {
                    let s = newfile(&mut fs, &format!("s{su}-{i}-{unwritten}-{k}"));
                    let m = fs.alloc_write(s, 0, 1, AllocFlags::default()).unwrap();
                    small_unaligned += (m.pblk % su != 0) as u32;
                }
            }
        }
        assert!(small_unaligned > 0, "su {su}: every one-block file is on a stripe unit");
        // growing a file at its end goes on from its last block
        let g = newfile(&mut fs, &format!("grow{su}"));
        let a = fs.alloc_write(g, 0, su, AllocFlags::default()).unwrap();
        let b = fs.alloc_write(g, su, su, AllocFlags::default()).unwrap();
        assert_eq!(b.pblk, a.pblk + su, "su {su}: growth is contiguous");
        drop(fs);
        let fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
        assert_eq!(fs.stripe(), (su, su * 4));
        drop(fs);
        assert_eq!(fsck(&pm, FsckOptions::default()).exit_code, 0);
    }
}

/// A stripe unit that is not a divisor of 2 MiB (4 MiB here): a huge
/// request starts on both, and the first 2 MiB-aligned chunk, which is not
/// on a 4 MiB boundary when the data region starts past one, is skipped.
#[test]
fn huge_request_on_a_wide_stripe_unit() {
    let pm = SimPmem::new(64 << 20);
    let mut fs = fs_striped(&pm, (1024, 1024));
    for i in 0..3 {
        let f = newfile(&mut fs, &format!("h{i}"));
        let m = fs.alloc_write(f, 0, 1024, AllocFlags { huge_align: true, ..Default::default() }).unwrap();
        assert_eq!((m.pblk % 1024, m.count), (0, 512), "{i}: {m:?}");
    }
    // with no 4 MiB boundary free, a huge request still gets a 2 MiB one:
    // fill the filesystem with 2 MiB files, then free three on no 4 MiB
    // line (the metadata of the unlinks may take blocks of the first)
    let mut odd = Vec::new();
    for i in 0.. {
        let f = newfile(&mut fs, &format!("fill{i}"));
        match fs.alloc_write(f, 0, 512, AllocFlags { huge_align: true, ..Default::default() }) {
            Ok(m) if m.count == 512 && m.pblk % 512 == 0 => {
                if m.pblk % 1024 != 0 {
                    odd.push(format!("fill{i}"));
                }
            }
            _ => break,
        }
    }
    assert!(odd.len() >= 3, "2 MiB chunks off the 4 MiB lines: {odd:?}");
    let f = newfile(&mut fs, "pmd");
    for name in &odd[..3] {
        let i = fs.unlink(ROOT_INO, name.as_bytes(), T).unwrap();
        fs.evict(i).unwrap();
    }
    let m = fs.alloc_write(f, 0, 1024, AllocFlags { huge_align: true, ..Default::default() }).unwrap();
    assert_eq!((m.pblk % 512, m.pblk % 1024 != 0, m.count), (0, true, 512), "{m:?}");
    // without a stripe unit the same request takes the first 2 MiB chunk
    let pm2 = SimPmem::new(64 << 20);
    let mut fs2 = fs_on(&pm2);
    let f = newfile(&mut fs2, "h");
    let m = fs2.alloc_write(f, 0, 1024, AllocFlags { huge_align: true, ..Default::default() }).unwrap();
    assert_eq!(m.pblk % 512, 0);
    assert_eq!(fs2.stripe(), (0, 0));
}

/// Geometry mkfs must refuse, and a superblock that holds it (patched, or
/// written by a bug) does not mount: a width that is not whole units, one
/// without a unit, a unit without a width, one wider than the data region.
#[test]
fn bad_stripe_geometry_is_refused() {
    let pm = SimPmem::new(16 << 20);
    for stripe in [(4, 6), (0, 4), (4, 0), (1 << 20, 1 << 20)] {
        let o = FormatOptions { label: b"", uuid: [2; 16], size_bytes: 0, time: T, journal_slots: 64, stripe };
        assert!(matches!(Fs::format(&pm, &o), Err(Error::Invalid)), "{stripe:?}");
    }
    drop(fs_striped(&pm, (4, 8)));
    let mut b = [0u8; SB_SIZE];
    pm.read(0, &mut b).unwrap();
    let mut sb = Superblock::decode(&b, 0).unwrap();
    sb.stripe_width = 6;
    sb.encode(&mut b);
    pm.write(0, &b);
    match Fs::mount(&pm, &MountOptions::default()) {
        Err(Error::Corrupt { what, .. }) => assert_eq!(what, "superblock stripe geometry"),
        other => panic!("mounted a width of 1.5 units: {:?}", other.map(|_| ())),
    }
    assert_ne!(fsck(&pm, FsckOptions::default()).exit_code, 0);
}

/// xfstests generic/562 at a 64th of its size: a file of many small
/// extents (every other block punched) is cloned over by a file of large
/// ones while the filesystem is full, data blocks and then inodes (btree
/// nodes). The clone frees the destination's blocks before it shares the
/// source's, so each 8 MiB step the kernel makes (`STEP_BLOCKS`) fits: no
/// ENOSPC, the data is the source's after a remount, fsck is clean.
#[test]
fn clone_over_small_extents_on_a_full_filesystem() {
    const N: u64 = 3200; // 12.5 MiB: two kernel steps
    const STEP: u64 = 2048;
    let pm = SimPmem::new(40 << 20);
    let mut fs = fs_on(&pm);
    let foo = newfile(&mut fs, "foo");
    harness::write(&mut fs, foo, 0, &vec![0xe5; (N * BLOCK_SIZE) as usize], T).unwrap();
    for b in (1..N).step_by(2) {
        fs.punch(foo, b, 1).unwrap();
    }
    let bar = newfile(&mut fs, "bar");
    let want = vec![0xc7; (N * BLOCK_SIZE) as usize];
    harness::write(&mut fs, bar, 0, &want, T).unwrap();
    let mut n = 0;
    loop {
        let f = match fs.create(ROOT_INO, format!("filler_{n}").as_bytes(), &NewInode { mode: S_IFREG | 0o644, time: T, ..Default::default() }) {
            Ok((f, _)) => f,
            Err(Error::NoSpace) => break,
            Err(e) => panic!("{e:?}"),
        };
        n += 1;
        match harness::write(&mut fs, f, 0, &[1u8; 2048], T) {
            Ok(()) => {}
            Err(Error::NoSpace) => break,
            Err(e) => panic!("{e:?}"),
        }
    }
    // what the data allocator keeps back for metadata, with btree nodes of
    // empty files (xfstests' 2 KiB fillers go on as inline-less inodes)
    fill_with_empty_files(&mut fs);
    assert!(fs.superblock().free_blocks < 4, "not full: {} free", fs.superblock().free_blocks);
    let mut at = 0;
    while at < N {
        let k = (N - at).min(STEP);
        fs.reflink(bar, at, foo, at, k).unwrap_or_else(|e| panic!("clone step at block {at} after {n} fillers: {e:?}"));
        at += k;
    }
    fs.unmount(1).unwrap();
    let fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
    assert_eq!(harness::read_all(&fs, foo).unwrap(), want);
    assert!(fs.map(foo, 1, N - 1).unwrap().shared, "the clone copied");
    fs.unmount(1).unwrap();
    let rep = fsck(&pm, FsckOptions::default());
    assert_eq!(rep.exit_code, 0, "{}", rep.describe());
}
