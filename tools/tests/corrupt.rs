//! Corruption: flip bytes in each on-media structure; fsck must exit 4 and
//! name the structure, mount must return Error::Corrupt (for the structures
//! mount verifies) or the operation touching the structure must, and nothing
//! may panic. Also fsck -y repairs.

use ferrofs_engine::*;
use ferrofs_tools::fsck::{fsck, FsckOptions};
use ferrofs_tools::harness::{self, dump};
use ferrofs_tools::{rng::Rng, SimPmem};

const T: Time = Time { sec: 5, nsec: 0 };

fn populated() -> (Vec<u8>, u64, u64) {
    let pm = SimPmem::new(8 << 20);
    let o = FormatOptions { label: b"c", uuid: [4; 16], size_bytes: 0, time: T, journal_slots: 64, stripe: (0, 0) };
    Fs::format(&pm, &o).unwrap();
    let mut fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
    let a = NewInode { mode: S_IFREG | 0o644, time: T, ..Default::default() };
    let (f, _) = fs.create(ROOT_INO, b"file", &a).unwrap();
    // many extents: every other block
    for l in 0..300u64 {
        harness::write(&mut fs, f, l * 2 * BLOCK_SIZE, &[l as u8; 100], T).unwrap();
    }
    let (g, _) = fs.create(ROOT_INO, b"g", &a).unwrap();
    fs.reflink(f, 0, g, 0, 40).unwrap();
    fs.xattr_set(f, 1, b"user.v", &vec![3u8; 10000], XattrMode::Any).unwrap();
    let (t, _) = fs.tmpfile(ROOT_INO, &a).unwrap();
    let _ = t;
    fs.quarantine(fs.superblock().total_blocks - 5, 1).unwrap();
    for i in 0..30 {
        fs.mkdir(ROOT_INO, format!("d{i}").as_bytes(), &NewInode { mode: 0o755, time: T, ..Default::default() }).unwrap();
    }
    let m = fs.into_media(); // leave the orphan in place
    (m.snapshot(), f, g)
}

fn first_leaf(img: &[u8], root: u64, height: u32) -> u64 {
    let mut b = root;
    for _ in 1..height {
        let off = (b * BLOCK_SIZE + BT_HDR + KEY_SIZE) as usize;
        b = u64::from_le_bytes(img[off..off + 8].try_into().unwrap());
    }
    b
}

fn flip(img: &[u8], off: u64) -> SimPmem {
    let mut v = img.to_vec();
    v[off as usize] ^= 0x5a;
    SimPmem::from_image(v, false)
}

fn expect_fsck(pm: &SimPmem, what: &str) {
    let r = fsck(pm, FsckOptions::default());
    assert_eq!(r.exit_code, 4, "fsck should fail for {what}:\n{}", r.describe());
    assert!(r.problems.iter().any(|p| p.what.contains(what)), "fsck did not name {what}:\n{}", r.describe());
}

#[test]
fn clean_image_is_clean() {
    let (img, _, _) = populated();
    let pm = SimPmem::from_image(img, false);
    let r = fsck(&pm, FsckOptions::default());
    // an orphan is pending but that is a consistent state
    assert_eq!(r.exit_code, 0, "{}", r.describe());
}

#[test]
fn corrupt_each_structure() {
    let (img, _, _) = populated();
    let pm = SimPmem::from_image(img.clone(), false);
    let fs = Fs::mount(&pm, &MountOptions { read_only: true, time: 0 }).unwrap();
    let g = fs.geometry();
    let roots: Vec<(TreeId, TreeRoot)> = ALL_TREES.iter().map(|&t| (t, fs.tree_root(t))).collect();
    let _ = fs;
    // (structure name fsck reports, byte offset, mount must fail)
    let mut cases: Vec<(String, u64, bool)> = vec![
        ("superblock".into(), 100, true),
        ("backup superblock".into(), g.backup_sb * BLOCK_SIZE + 100, false),
        ("journal header".into(), g.journal_start * BLOCK_SIZE + 20, true),
        ("journal header".into(), (g.journal_start + 1) * BLOCK_SIZE + 20, true),
        ("free space bitmap".into(), g.bitmap_start * BLOCK_SIZE + 200, true),
    ];
    for (t, r) in &roots {
        assert!(r.root != 0, "{t:?} empty in the populated image");
        cases.push((t.name().into(), r.root * BLOCK_SIZE + BT_HDR + 3, true));
        if r.height > 1 {
            let leaf = first_leaf(&img, r.root, r.height);
            cases.push((t.name().into(), leaf * BLOCK_SIZE + BT_HDR + 30, false));
        }
    }
    let mut n = 0;
    for (what, off, mount_fails) in cases {
        let pm = flip(&img, off);
        expect_fsck(&pm, &what);
        let res = Fs::mount(&pm, &MountOptions { read_only: true, time: 0 });
        if mount_fails {
            match res {
                Err(Error::Corrupt { what: w, .. }) => eprintln!("{what}: mount -> Corrupt({w})"),
                Err(e) => panic!("{what}: mount gave {e:?}, want Corrupt"),
                Ok(_) => panic!("{what}: mount succeeded on a corrupt image"),
            }
        } else if let Ok(fs) = res {
            // the structure is found when it is used
            if what != "backup superblock" {
                let mut hit = dump(&fs).err();
                if hit.is_none() {
                    let mut v = [0u8; 600];
                    for t in ALL_TREES {
                        if let Err(e) = fs.tree_seek_ge(t, Key::new(0, 0, 0), &mut v) {
                            hit = Some(e);
                        }
                        let mut k = Key::new(0, 0, 0);
                        while let Ok(Some(x)) = fs.tree_seek_ge(t, k, &mut v) {
                            k = match x.succ() { Some(s) => s, None => break };
                        }
                        if let Err(e) = fs.tree_seek_ge(t, k, &mut v) {
                            hit = Some(e);
                        }
                    }
                }
                assert!(matches!(hit, Some(Error::Corrupt { .. })), "{what}: corrupt leaf not detected: {hit:?}");
            }
        }
        if what.starts_with("journal") {
            let r = fsck(&pm, FsckOptions { repair: true });
            assert_eq!(r.exit_code, 1, "{what}: {}", r.describe());
            Fs::mount(&pm, &MountOptions::default()).expect("mount after journal reset");
        }
        n += 1;
    }
    // xattr value block
    let pm = SimPmem::from_image(img.clone(), false);
    let fs = Fs::mount(&pm, &MountOptions { read_only: true, time: 0 }).unwrap();
    let mut found = None;
    fs.owners(0, u64::MAX / 2, &mut |_, _, _, _| {}).unwrap();
    let mut buf = vec![0u8; 20000];
    assert_eq!(fs.xattr_get(2, 1, b"user.v", &mut buf).unwrap(), 10000);
    // locate the value: the only blocks not owned by trees or files; scan for the 0x03 pattern
    for b in g.data_start..g.backup_sb {
        if img[(b * BLOCK_SIZE) as usize..((b + 1) * BLOCK_SIZE) as usize].iter().all(|&x| x == 3) {
            found = Some(b);
            break;
        }
    }
    let _ = fs;
    let vb = found.expect("xattr value block");
    let pm = flip(&img, vb * BLOCK_SIZE + 7);
    expect_fsck(&pm, "xattr value");
    let fs = Fs::mount(&pm, &MountOptions { read_only: true, time: 0 }).unwrap();
    assert!(matches!(fs.xattr_get(2, 1, b"user.v", &mut buf), Err(Error::Corrupt { .. })));
    eprintln!("corruption cases: {}", n + 1);
}

#[test]
fn random_byte_flips_never_panic() {
    let (img, _, _) = populated();
    let pm = SimPmem::from_image(img.clone(), false);
    let fs = Fs::mount(&pm, &MountOptions { read_only: true, time: 0 }).unwrap();
    let g = fs.geometry();
    let mut meta: Vec<u64> = vec![0, g.journal_start, g.journal_start + 1, g.bitmap_start];
    for t in ALL_TREES {
        let r = fs.tree_root(t);
        if r.root != 0 {
            meta.push(r.root);
            meta.push(first_leaf(&img, r.root, r.height));
        }
    }
    let _ = fs;
    let mut r = Rng::new(77);
    let mut detected = 0;
    for _ in 0..300 {
        let mut v = img.clone();
        let b = meta[r.below(meta.len() as u64) as usize];
        for _ in 0..1 + r.below(4) {
            let off = b * BLOCK_SIZE + r.below(BLOCK_SIZE);
            v[off as usize] ^= 1 << r.below(8);
        }
        let pm = SimPmem::from_image(v, false);
        let rep = fsck(&pm, FsckOptions::default());
        if rep.exit_code != 0 {
            detected += 1;
        }
        if let Ok(mut fs) = Fs::mount(&pm, &MountOptions::default()) {
            let _ = dump(&fs);
            let _ = fs.create(ROOT_INO, b"after", &NewInode { mode: S_IFREG, time: T, ..Default::default() });
            let _ = fs.punch(2, 0, 100);
            let _ = fs.unmount(0);
        }
    }
    eprintln!("random corruptions detected by fsck: {detected}/300");
    assert!(detected > 250);
}

#[test]
fn fsck_repairs() {
    let (img, f, g) = populated();
    // 1. bitmap bit cleared for an in-use block (crc kept valid)
    {
        let pm = SimPmem::from_image(img.clone(), false);
        let fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
        let p = fs.map(f, 0, 1).unwrap().pblk;
        let geo = fs.geometry();
        fs.unmount(0).unwrap();
        let off = geo.bitmap_start * BLOCK_SIZE + BM_HDR + p / 8;
        pm.corrupt_byte(off, 1 << (p % 8));
        let mut blk = pm.peek(geo.bitmap_start * BLOCK_SIZE, BLOCK_SIZE as usize);
        blk[8..12].fill(0);
        let c = crc32c(&blk);
        Media::write(&pm, geo.bitmap_start * BLOCK_SIZE + 8, &c.to_le_bytes());
        expect_fsck(&pm, "free space bitmap");
        let r = fsck(&pm, FsckOptions { repair: true });
        assert_eq!(r.exit_code, 1, "{}", r.describe());
        assert_eq!(fsck(&pm, FsckOptions::default()).exit_code, 0);
    }
    // 2. primary superblock destroyed: restored from the backup
    {
        let pm = flip(&img, 120);
        expect_fsck(&pm, "superblock");
        let r = fsck(&pm, FsckOptions { repair: true });
        assert_eq!(r.exit_code, 1, "{}", r.describe());
        assert_eq!(fsck(&pm, FsckOptions::default()).exit_code, 0);
        Fs::mount(&pm, &MountOptions::default()).unwrap();
    }
    // 2b. primary superblock wiped entirely: geometry from the backup, tree
    //     roots found by scanning, counters recomputed; nothing lost
    {
        let pm = SimPmem::from_image(img.clone(), false);
        let before = dump(&Fs::mount(&SimPmem::from_image(img.clone(), false), &MountOptions::default()).unwrap()).unwrap();
        Media::zero(&pm, 0, 512);
        assert_eq!(Fs::mount(&pm, &MountOptions::default()).err(), Some(Error::BadMagic));
        let r = fsck(&pm, FsckOptions { repair: true });
        assert_eq!(r.exit_code, 1, "{}", r.describe());
        assert_eq!(fsck(&pm, FsckOptions::default()).exit_code, 0);
        let fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
        assert_eq!(dump(&fs).unwrap(), before);
    }
    // 3. wrong nlink and wrong refcount
    {
        let pm = SimPmem::from_image(img.clone(), false);
        let mut fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
        let i = fs.read_inode(g).unwrap();
        fs.repair_inode_counts(g, 5, i.blocks).unwrap();
        let p = fs.map(f, 0, 1).unwrap().pblk;
        let mut v = [0u8; 16];
        let k = fs.tree_seek_le(TreeId::Refcount, Key::new(p, 0, 0), &mut v).unwrap().unwrap();
        v[8] = 9;
        fs.tree_update(TreeId::Refcount, k, &v).unwrap();
        fs.unmount(0).unwrap();
        let r = fsck(&pm, FsckOptions::default());
        assert_eq!(r.exit_code, 4);
        assert!(r.problems.iter().any(|p| p.what == "refcount btree"));
        assert!(r.problems.iter().any(|p| p.what == "inode btree"));
        let r = fsck(&pm, FsckOptions { repair: true });
        assert_eq!(r.exit_code, 1, "{}", r.describe());
        assert_eq!(fsck(&pm, FsckOptions::default()).exit_code, 0);
    }
    // 4. interrupted transaction: -n reports, never writes; -y rolls back
    {
        let pm = SimPmem::from_image(img.clone(), true);
        let mut fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
        let got = std::rc::Rc::new(std::cell::RefCell::new(None));
        let g2 = got.clone();
        pm.set_fence_hook(Some(Box::new(move |v: &ferrofs_tools::CrashView| {
            if v.fence_no > 0 && g2.borrow().is_none() {
                *g2.borrow_mut() = Some(v.image(ferrofs_tools::CrashMode::AllStored));
            }
        })));
        fs.reflink(f, 0, g, 100, 30).unwrap();
        pm.set_fence_hook(None);
        let crashed = SimPmem::from_image(got.borrow().clone().unwrap(), false);
        let before = crashed.snapshot();
        expect_fsck(&crashed, "journal");
        assert!(crashed.snapshot() == before, "fsck -n wrote to the device");
        let r = fsck(&crashed, FsckOptions { repair: true });
        assert_eq!(r.exit_code, 1, "{}", r.describe());
        assert_eq!(fsck(&crashed, FsckOptions::default()).exit_code, 0);
    }
}

/// Cross-structure inconsistencies with valid checksums (made through the
/// raw tree API) are found and named.
#[test]
fn fsck_semantic_checks() {
    let (img, f, _g) = populated();
    type Edit = fn(&mut Fs<&SimPmem>, u64);
    let cases: Vec<(&str, Edit)> = vec![
        ("rmap btree", |fs, f| {
            let p = fs.map(f, 0, 1).unwrap().pblk;
            let mut v = [0u8; 8];
            let k = fs.tree_seek_ge(TreeId::Rmap, Key::new(p, 0, 0), &mut v).unwrap().unwrap();
            assert!(fs.tree_delete(TreeId::Rmap, k).unwrap());
        }),
        ("extent btree", |fs, f| {
            // blocks 1..3: block 1 is a hole, block 2 is mapped: overlap
            let p = fs.map(f, 0, 1).unwrap().pblk;
            let mut v = [0u8; 16];
            v[..8].copy_from_slice(&p.to_le_bytes());
            v[8..12].copy_from_slice(&2u32.to_le_bytes());
            fs.tree_insert(TreeId::Extent, Key::new(f, 1, 0), &v).unwrap();
        }),
        ("dir btree", |fs, _| {
            let mut v = [0u8; 272];
            v[..8].copy_from_slice(&999u64.to_le_bytes());
            v[8] = 8;
            v[9] = 4;
            v[16..20].copy_from_slice(b"lost");
            let h = fs.name_hash(b"lost");
            fs.tree_insert(TreeId::Dir, Key::new(ROOT_INO, h, 0), &v).unwrap();
        }),
        ("orphan btree", |fs, _| {
            let (t, _) = fs.tmpfile(ROOT_INO, &NewInode { mode: S_IFREG, time: T, ..Default::default() }).unwrap();
            assert!(fs.tree_delete(TreeId::Orphan, Key::new(t, 0, 0)).unwrap());
        }),
        ("refcount btree", |fs, f| {
            let p = fs.map(f, 100, 1).unwrap().pblk;
            let mut v = [0u8; 16];
            v[..8].copy_from_slice(&1u64.to_le_bytes());
            v[8..16].copy_from_slice(&2u64.to_le_bytes());
            fs.tree_insert(TreeId::Refcount, Key::new(p, 0, 0), &v).unwrap();
        }),
        ("inode btree", |fs, _| {
            let mut v = [0u8; INODE_SIZE];
            assert!(fs.tree_get(TreeId::Inode, Key::new(ROOT_INO, 0, 0), &mut v).unwrap());
            v[24] ^= 1; // directory size
            fs.tree_update(TreeId::Inode, Key::new(ROOT_INO, 0, 0), &v).unwrap();
        }),
        ("xattr btree", |fs, f| {
            let mut v = [0u8; 512];
            v[1] = 3;
            v[24..27].copy_from_slice(b"bad");
            fs.tree_insert(TreeId::Xattr, Key::new(f, 12345, 0), &v).unwrap();
        }),
        ("badblock btree", |fs, _| {
            fs.tree_insert(TreeId::Badblock, Key::new(3, 0, 0), &1u64.to_le_bytes()).unwrap();
        }),
    ];
    let fixable = ["rmap btree", "dir btree", "orphan btree", "refcount btree", "inode btree"];
    for (what, edit) in cases {
        let pm = SimPmem::from_image(img.clone(), false);
        let mut fs = Fs::mount(&pm, &MountOptions { read_only: false, time: 0 }).unwrap();
        edit(&mut fs, f);
        let _ = fs.into_media();
        expect_fsck(&pm, what);
        // and -y never makes things worse or panics
        let r = fsck(&pm, FsckOptions { repair: true });
        assert!(r.exit_code == 1 || r.exit_code == 4, "{what}: {}", r.describe());
        if fixable.contains(&what) {
            assert_eq!(r.exit_code, 1, "{what} should be repaired:\n{}", r.describe());
            assert_eq!(fsck(&pm, FsckOptions::default()).exit_code, 0);
        }
    }
}

/// A btree whose keys are out of order lets a seek find a key that the
/// delete, descending by that key, cannot reach. A loop that deletes until
/// a seek finds nothing (fsck -y's refcount rebuild; `make stress`'s fuzzer
/// found fsck hanging there on a random flip) must call that corruption,
/// not go round for ever.
#[test]
fn deleting_a_found_key_that_the_tree_cannot_reach_is_corruption() {
    let pm = SimPmem::new(8 << 20);
    let o = FormatOptions { label: b"k", uuid: [5; 16], size_bytes: 0, time: T, journal_slots: 64, stripe: (0, 0) };
    Fs::format(&pm, &o).unwrap();
    let mut fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
    for p in 1..=5u64 {
        let mut v = [0u8; 16];
        v[..8].copy_from_slice(&1u64.to_le_bytes());
        v[8..].copy_from_slice(&2u64.to_le_bytes());
        fs.tree_insert(TreeId::Refcount, Key::new(p * 1000, 0, 0), &v).unwrap();
    }
    let r = fs.tree_root(TreeId::Refcount);
    assert_eq!(r.height, 1, "one leaf");
    let mut img = fs.into_media().snapshot();
    // swap the keys of the leaf's first two entries: a seek from key 0
    // finds 2000 first, and a delete's binary search for 2000 misses it
    let o = (r.root * BLOCK_SIZE + BT_HDR) as usize;
    let es = TreeId::Refcount.leaf_entry() as usize;
    let ks = KEY_SIZE as usize;
    let (ka, kb) = (img[o..o + ks].to_vec(), img[o + es..o + es + ks].to_vec());
    img[o..o + ks].copy_from_slice(&kb);
    img[o + es..o + es + ks].copy_from_slice(&ka);
    let b = (r.root * BLOCK_SIZE) as usize;
    img[b + 8..b + 12].fill(0);
    let c = crc32c(&img[b..b + BLOCK_SIZE as usize]);
    img[b + 8..b + 12].copy_from_slice(&c.to_le_bytes());
    let pm = SimPmem::from_image(img, false);
    let mut fs = Fs::mount(&pm, &MountOptions::default()).unwrap();
    let r = fs.repair_refcounts(&[]);
    assert!(matches!(r, Err(Error::Corrupt { .. })), "refcount rebuild: {r:?}");
}
