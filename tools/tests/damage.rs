//! The damaged-files report (`ferrofs-du --damaged`, `fsck.ferrofs -n`) on
//! a simulated image with quarantined blocks: paths, byte ranges, sharing,
//! hard links, free quarantined blocks, and what a punch changes.

use ferrofs_engine::*;
use ferrofs_tools::damage::report;
use ferrofs_tools::{harness, SimPmem};
use std::process::Command;

const T: Time = Time { sec: 5, nsec: 0 };
const B: u64 = BLOCK_SIZE;

fn file(fs: &mut Fs<&SimPmem>, dir: u64, name: &[u8], blocks: u64) -> u64 {
    let (ino, _) = fs.create(dir, name, &NewInode { mode: S_IFREG | 0o644, time: T, ..Default::default() }).unwrap();
    let data: Vec<u8> = (0..blocks * B).map(|i| (i / 7) as u8).collect();
    harness::write(fs, ino, 0, &data, T).unwrap();
    ino
}

fn pblk_of(fs: &Fs<&SimPmem>, ino: u64, lblk: u64) -> u64 {
    let m = fs.map(ino, lblk, 1).unwrap();
    assert_eq!(m.kind, MapKind::Written);
    m.pblk
}

/// /d/src (4 blocks) reflinked whole into /d/clone1 and at block 2 of
/// /clone2; /solo alone with a hard link /d/solo-link; block 1 of src and
/// block 3 of solo quarantined, and one free block.
fn image() -> (SimPmem, u64, u64, u64) {
    let pm = SimPmem::new(8 << 20);
    let o = FormatOptions { label: b"dmg", uuid: [3; 16], size_bytes: 0, time: T, journal_slots: 64, stripe: (0, 0) };
    Fs::format(&pm, &o).unwrap();
    let mut fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
    let root = fs.root_ino();
    let (d, _) = fs.mkdir(root, b"d", &NewInode { mode: S_IFDIR | 0o755, time: T, ..Default::default() }).unwrap();
    let src = file(&mut fs, d, b"src", 4);
    let (c1, _) = fs.create(d, b"clone1", &NewInode { mode: S_IFREG | 0o644, time: T, ..Default::default() }).unwrap();
    fs.reflink(src, 0, c1, 0, 4).unwrap();
    let (c2, _) = fs.create(root, b"clone2", &NewInode { mode: S_IFREG | 0o644, time: T, ..Default::default() }).unwrap();
    fs.reflink(src, 1, c2, 2, 1).unwrap();
    let solo = file(&mut fs, root, b"solo", 4);
    fs.link(solo, d, b"solo-link", T).unwrap();
    let bad_shared = pblk_of(&fs, src, 1);
    let bad_solo = pblk_of(&fs, solo, 3);
    fs.quarantine(bad_shared, 1).unwrap();
    fs.quarantine(bad_solo, 1).unwrap();
    let free = fs.superblock().total_blocks - 100;
    fs.quarantine(free, 2).unwrap();
    fs.unmount(1).unwrap();
    (pm, bad_shared, bad_solo, free)
}

fn lines(pm: &SimPmem) -> Vec<String> {
    report(&pm).unwrap().iter().flat_map(|d| d.lines()).collect()
}

#[test]
fn report_lists_owners_ranges_and_sharing() {
    let (pm, shared, solo, free) = image();
    let want = vec![
        format!("damaged block {shared}: /clone2 bytes 8192-12287 (shared with 2 other files)"),
        format!("damaged block {shared}: /d/clone1 bytes 4096-8191 (shared with 2 other files)"),
        format!("damaged block {shared}: /d/src bytes 4096-8191 (shared with 2 other files)"),
        format!("damaged block {solo}: /solo (and 1 more links) bytes 12288-16383 (not shared)"),
        format!("damaged blocks {free}-{}: no file owns it (kept out of use)", free + 1),
    ];
    let mut got = lines(&pm);
    let mut w = want.clone();
    got.sort();
    w.sort();
    assert_eq!(got, w);
}

#[test]
fn many_reflinks_of_one_bad_block_are_one_range() {
    // every page of /many is a reflink of the one block (the shape of
    // mf/17-rmap-many-owners): one line for the contiguous range, and one
    // more for the separate range past a gap
    let pm = SimPmem::new(8 << 20);
    let o = FormatOptions { label: b"dmg", uuid: [4; 16], size_bytes: 0, time: T, journal_slots: 64, stripe: (0, 0) };
    Fs::format(&pm, &o).unwrap();
    let mut fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
    let root = fs.root_ino();
    let f = file(&mut fs, root, b"many", 1);
    for i in 1..300 {
        fs.reflink(f, 0, f, i, 1).unwrap();
    }
    fs.reflink(f, 0, f, 400, 1).unwrap();
    let bad = pblk_of(&fs, f, 0);
    fs.quarantine(bad, 1).unwrap();
    fs.unmount(1).unwrap();
    assert_eq!(
        lines(&pm),
        vec![
            format!("damaged block {bad}: /many bytes 0-{} (not shared)", 300 * B - 1),
            format!("damaged block {bad}: /many bytes {}-{} (not shared)", 400 * B, 401 * B - 1),
        ]
    );
}

#[test]
fn punched_file_leaves_the_report() {
    let (pm, shared, _, _) = image();
    let mut fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
    let root = fs.root_ino();
    let d = fs.lookup(root, b"d").unwrap().unwrap();
    let src = fs.lookup(d, b"src").unwrap().unwrap();
    let free_before = fs.statfs().free_blocks;
    fs.punch(src, 1, 1).unwrap();
    // the block is still owned by the clones: nothing freed
    assert_eq!(fs.statfs().free_blocks, free_before);
    let c1 = fs.lookup(d, b"clone1").unwrap().unwrap();
    let c2 = fs.lookup(root, b"clone2").unwrap().unwrap();
    fs.punch(c1, 1, 1).unwrap();
    fs.punch(c2, 2, 1).unwrap();
    // last owner gone: the quarantined block is still not free
    assert_eq!(fs.statfs().free_blocks, free_before, "a quarantined block went back to the free pool");
    fs.unmount(2).unwrap();
    let got = lines(&pm);
    assert!(got.contains(&format!("damaged block {shared}: no file owns it (kept out of use)")), "{got:#?}");
    assert!(!got.iter().any(|l| l.contains("/d/src") || l.contains("clone")), "{got:#?}");
}

#[test]
fn du_damaged_and_fsck_print_the_same_lines() {
    let (pm, ..) = image();
    let img = std::env::temp_dir().join(format!("ferrofs-damage-{}", std::process::id()));
    std::fs::write(&img, pm.snapshot()).unwrap();
    let want = lines(&pm);
    let o = Command::new(env!("CARGO_BIN_EXE_ferrofs-du")).args(["--damaged", img.to_str().unwrap()]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(1), "{out}");
    for l in &want {
        assert!(out.lines().any(|x| x == l), "ferrofs-du lacks {l:?}:\n{out}");
    }
    assert!(out.contains("4 blocks quarantined, 4 files damaged"), "{out}");
    let o = Command::new(env!("CARGO_BIN_EXE_fsck-ferrofs")).args(["-n", img.to_str().unwrap()]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(0), "{out}");
    for l in &want {
        assert!(out.lines().any(|x| x.ends_with(&format!(": {l}"))), "fsck lacks {l:?}:\n{out}");
    }
    // an undamaged image
    let clean = SimPmem::new(8 << 20);
    let o2 = FormatOptions { label: b"ok", uuid: [4; 16], size_bytes: 0, time: T, journal_slots: 64, stripe: (0, 0) };
    Fs::format(&clean, &o2).unwrap();
    std::fs::write(&img, clean.snapshot()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ferrofs-du")).args(["--damaged", img.to_str().unwrap()]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
    let _ = std::fs::remove_file(&img);
}

/// What memory failure decides by (`Fs::block_use`, `Fs::has_bad_block`):
/// the superblock area is fixed metadata, an owned block is file data, an
/// unowned block in use is a btree node, a free block is free.
#[test]
fn block_use_classifies_what_a_memory_failure_hit() {
    let (pm, shared, solo, free) = image();
    let fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
    let owned = |p: u64| {
        let mut n = 0;
        fs.owners(p, 1, &mut |_, _, _, _| n += 1).unwrap();
        n > 0
    };
    assert_eq!(fs.block_use(0, owned(0)).unwrap(), BlockUse::FixedMetadata);
    assert!(BlockUse::FixedMetadata.is_metadata());
    assert_eq!(fs.block_use(shared, owned(shared)).unwrap(), BlockUse::FileData);
    assert_eq!(fs.block_use(solo, owned(solo)).unwrap(), BlockUse::FileData);
    assert!(!BlockUse::FileData.is_metadata());
    // the quarantined free blocks are claimed in the bitmap (never handed
    // out again), so they count as in use without an owner: metadata-like,
    // which is why memory failure asks the rmap first
    let sb = fs.superblock().clone();
    let mut unused = None;
    for p in (sb.data_start..sb.total_blocks - 1).rev() {
        if !fs.block_in_use(p).unwrap() {
            unused = Some(p);
            break;
        }
    }
    let unused = unused.expect("a free block");
    assert_eq!(fs.block_use(unused, false).unwrap(), BlockUse::Free);
    // a btree node: the root directory's first directory block or any
    // in-use, unowned block below the first file's data
    let node = (sb.data_start..sb.total_blocks - 1)
        .find(|&p| fs.block_in_use(p).unwrap() && !owned(p) && !(free..free + 2).contains(&p))
        .expect("an in-use block without an owner");
    assert_eq!(fs.block_use(node, false).unwrap(), BlockUse::Metadata);
    assert!(fs.has_bad_block(shared, 1).unwrap());
    assert!(fs.has_bad_block(shared - 1, 2).unwrap());
    assert!(!fs.has_bad_block(shared + 1, 1).unwrap() || shared + 1 == solo);
    assert!(fs.has_bad_block(free, 2).unwrap());
}

/// FS_XFLAG_DAX passes from a directory to the files and directories made
/// in it, not to symlinks or special files (as on XFS and ext4).
#[test]
fn dax_flag_inheritance() {
    assert_eq!(inherited_flags(IFLAG_DAX, S_IFREG | 0o644), IFLAG_DAX);
    assert_eq!(inherited_flags(IFLAG_DAX, S_IFDIR | 0o755), IFLAG_DAX);
    assert_eq!(inherited_flags(IFLAG_DAX, S_IFLNK | 0o777), 0);
    assert_eq!(inherited_flags(IFLAG_DAX, 0o020644), 0);
    assert_eq!(inherited_flags(IFLAG_IMMUTABLE | IFLAG_APPEND, S_IFREG | 0o644), 0);
    // the namespace table covers each index once
    let mut ns: Vec<u8> = XATTR_NAMESPACES.iter().map(|(n, _)| *n).collect();
    ns.dedup();
    assert_eq!(ns, vec![XATTR_NS_USER, XATTR_NS_TRUSTED, XATTR_NS_SECURITY, XATTR_NS_ACL_ACCESS, XATTR_NS_ACL_DEFAULT]);
}

/// A quarantined block is never copied as if it held the file's bytes: an
/// unshare or a defragmentation over it fails with EIO and moves nothing,
/// so the damage stays where the report and the readers see it.
#[test]
fn unshare_and_defrag_do_not_copy_a_lost_block() {
    let (pm, bad_shared, _, _) = image();
    let before = lines(&pm);
    let mut fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
    let d = fs.lookup(fs.root_ino(), b"d").unwrap().unwrap();
    let c1 = fs.lookup(d, b"clone1").unwrap().unwrap();
    assert!(matches!(fs.unshare(c1, 0, 4), Err(Error::Io { block }) if block == bad_shared));
    assert_eq!(pblk_of(&fs, c1, 1), bad_shared);
    fs.unmount(2).unwrap();
    assert_eq!(lines(&pm), before);
    let mut fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
    // a file in four one-block extents (another file's blocks between),
    // its block 2 lost: defrag would lay the four out as one run
    let (f, _) = fs.create(d, b"frag", &NewInode { mode: S_IFREG | 0o644, time: T, ..Default::default() }).unwrap();
    let (x, _) = fs.create(d, b"x", &NewInode { mode: S_IFREG | 0o644, time: T, ..Default::default() }).unwrap();
    for l in 0..4 {
        harness::write(&mut fs, f, l * B, &[l as u8; B as usize], T).unwrap();
        harness::write(&mut fs, x, l * B, &[7u8; B as usize], T).unwrap();
    }
    let lost = pblk_of(&fs, f, 2);
    fs.quarantine(lost, 1).unwrap();
    let r = harness::defrag(&mut fs, f);
    assert!(matches!(r, Err(Error::Io { .. })), "{r:?}");
    assert_eq!(pblk_of(&fs, f, 2), lost);
    assert_eq!(harness::read_all(&fs, x).unwrap(), [7u8; 4 * B as usize]);
    fs.unmount(3).unwrap();
}
