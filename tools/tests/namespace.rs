//! Namespace details: readdir cookies, names, special files, rename rules,
//! tmpfile, xattr limits.

use ferrofs_engine::*;
use ferrofs_tools::fsck::{fsck, FsckOptions};
use ferrofs_tools::harness::list_dir;
use ferrofs_tools::SimPmem;
use std::collections::BTreeSet;

const T: Time = Time { sec: 3, nsec: 4 };

fn setup(pm: &SimPmem) -> Fs<&SimPmem> {
    let o = FormatOptions { label: b"", uuid: [8; 16], size_bytes: 0, time: T, journal_slots: 64, stripe: (0, 0) };
    Fs::format(pm, &o).unwrap();
    Fs::mount(pm, &MountOptions::default()).unwrap()
}

fn reg() -> NewInode {
    NewInode { mode: S_IFREG | 0o644, time: T, ..Default::default() }
}
fn dir() -> NewInode {
    NewInode { mode: S_IFDIR | 0o755, time: T, ..Default::default() }
}

#[test]
fn readdir_cookies_are_stable() {
    let pm = SimPmem::new(16 << 20);
    let mut fs = setup(&pm);
    let mut names = BTreeSet::new();
    for i in 0..400 {
        let n = format!("entry-{i}");
        fs.create(ROOT_INO, n.as_bytes(), &reg()).unwrap();
        names.insert(n);
    }
    // read in batches of 7, deleting and adding names between batches
    let mut pos = 0;
    let mut seen = BTreeSet::new();
    let mut deleted = BTreeSet::new();
    let mut round = 0;
    loop {
        let mut batch = Vec::new();
        fs.readdir(ROOT_INO, pos, &mut |n, _, _, next| {
            batch.push((String::from_utf8_lossy(n).to_string(), next));
            batch.len() < 7
        })
        .unwrap();
        if batch.is_empty() {
            break;
        }
        for (n, next) in &batch {
            assert!(seen.insert(n.clone()), "{n} returned twice");
            pos = *next;
        }
        round += 1;
        // delete one name not yet seen and one already seen; add a new one
        if let Some(victim) = names.iter().find(|n| !seen.contains(*n) && !deleted.contains(*n)).cloned() {
            let v = fs.unlink(ROOT_INO, victim.as_bytes(), T).unwrap();
            fs.evict(v).unwrap();
            deleted.insert(victim);
        }
        fs.create(ROOT_INO, format!("new-{round}").as_bytes(), &reg()).unwrap();
    }
    assert!(seen.contains("."));
    assert!(seen.contains(".."));
    for n in &names {
        if !deleted.contains(n) {
            assert!(seen.contains(n), "{n} never returned");
        }
    }
    assert_eq!(fsck(&pm, FsckOptions::default()).exit_code, 0);
}

#[test]
fn names_and_special_files() {
    let pm = SimPmem::new(16 << 20);
    let mut fs = setup(&pm);
    let long = vec![b'n'; 255];
    fs.create(ROOT_INO, &long, &reg()).unwrap();
    assert!(fs.lookup(ROOT_INO, &long).unwrap().is_some());
    assert_eq!(fs.create(ROOT_INO, &[b'n'; 256], &reg()).err(), Some(Error::NameTooLong));
    assert_eq!(fs.create(ROOT_INO, b"a/b", &reg()).err(), Some(Error::Invalid));
    assert_eq!(fs.create(ROOT_INO, b"..", &reg()).err(), Some(Error::Invalid));
    assert_eq!(fs.lookup(ROOT_INO, b".").unwrap(), Some(ROOT_INO));
    assert_eq!(fs.lookup(ROOT_INO, b"..").unwrap(), Some(ROOT_INO));
    let (d, _) = fs.create(ROOT_INO, b"d", &dir()).unwrap();
    assert_eq!(fs.lookup(d, b"..").unwrap(), Some(ROOT_INO));
    let (c, ci) = fs.create(d, b"chr", &NewInode { mode: 0o020644, rdev: 0x0501, time: T, ..Default::default() }).unwrap();
    assert_eq!((ci.rdev, ci.ftype()), (0x0501, 2));
    fs.create(d, b"fifo", &NewInode { mode: 0o010644, time: T, ..Default::default() }).unwrap();
    fs.create(d, b"sock", &NewInode { mode: 0o140644, time: T, ..Default::default() }).unwrap();
    let ents = list_dir(&fs, d).unwrap();
    assert_eq!(ents.iter().map(|e| e.2).collect::<Vec<_>>(), vec![2, 1, 12]);
    assert_eq!(fs.read_inode(c).unwrap().rdev, 0x0501);
    // symlinks: inline, in a block, too long
    let t1 = b"short/target";
    let (s1, _) = fs.symlink(ROOT_INO, b"s1", t1, &NewInode { time: T, ..Default::default() }).unwrap();
    let t2 = vec![b'x'; 4095];
    let (s2, _) = fs.symlink(ROOT_INO, b"s2", &t2, &NewInode { time: T, ..Default::default() }).unwrap();
    let mut b = vec![0u8; 5000];
    assert_eq!(fs.read_link(s1, &mut b).unwrap(), t1.len());
    assert_eq!(&b[..t1.len()], t1);
    assert_eq!(fs.read_link(s2, &mut b).unwrap(), 4095);
    assert_eq!(&b[..4095], &t2[..]);
    assert_eq!(fs.symlink(ROOT_INO, b"s3", &[b'x'; 4096], &NewInode::default()).err(), Some(Error::NameTooLong));
    // setattr keeps the type and engine-owned fields
    let mut i = fs.read_inode(s1).unwrap();
    i.mode = S_IFREG | 0o600;
    i.uid = 42;
    i.size = 999;
    i.mtime = Time { sec: 100, nsec: 5 };
    fs.write_inode(s1, &i).unwrap();
    let j = fs.read_inode(s1).unwrap();
    assert_eq!((j.mode, j.uid, j.size, j.mtime), (S_IFLNK | 0o600, 42, t1.len() as u64, Time { sec: 100, nsec: 5 }));
    let m = fs.unmount(0).unwrap();
    let fs = Fs::mount(m, &MountOptions::default()).unwrap();
    assert_eq!(fs.read_link(s2, &mut b).unwrap(), 4095);
    assert_eq!(fsck(&pm, FsckOptions::default()).exit_code, 0);
}

#[test]
fn rename_rules() {
    let pm = SimPmem::new(16 << 20);
    let mut fs = setup(&pm);
    let (a, _) = fs.create(ROOT_INO, b"a", &dir()).unwrap();
    let (b, _) = fs.create(a, b"b", &dir()).unwrap();
    let (c, _) = fs.create(b, b"c", &dir()).unwrap();
    let (f, _) = fs.create(ROOT_INO, b"f", &reg()).unwrap();
    let none = RenameFlags::default();
    // into its own subtree
    assert_eq!(fs.rename(ROOT_INO, b"a", c, b"x", none, T).err(), Some(Error::Invalid));
    assert_eq!(fs.rename(ROOT_INO, b"a", a, b"x", none, T).err(), Some(Error::Invalid));
    // dir over file / file over dir / over non-empty dir
    assert_eq!(fs.rename(a, b"b", ROOT_INO, b"f", none, T).err(), Some(Error::NotDir));
    assert_eq!(fs.rename(ROOT_INO, b"f", ROOT_INO, b"a", none, T).err(), Some(Error::IsDir));
    let (e, _) = fs.create(ROOT_INO, b"e", &dir()).unwrap();
    assert_eq!(fs.rename(ROOT_INO, b"e", ROOT_INO, b"a", none, T).err(), Some(Error::NotEmpty));
    assert_eq!(fs.rename(ROOT_INO, b"f", ROOT_INO, b"e", RenameFlags { noreplace: true, exchange: false }, T).err(), Some(Error::Exists));
    // move a directory up: parents and nlinks follow
    fs.rename(b, b"c", ROOT_INO, b"c", none, T).unwrap();
    assert_eq!(fs.read_inode(c).unwrap().parent, ROOT_INO);
    assert_eq!(fs.read_inode(b).unwrap().nlink, 2);
    assert_eq!(fs.read_inode(ROOT_INO).unwrap().nlink, 2 + 3);
    // exchange a directory and a file across directories
    fs.rename(ROOT_INO, b"c", a, b"b", RenameFlags { exchange: true, noreplace: false }, T).unwrap();
    assert_eq!(fs.lookup(a, b"b").unwrap(), Some(c));
    assert_eq!(fs.lookup(ROOT_INO, b"c").unwrap(), Some(b));
    assert_eq!(fs.read_inode(c).unwrap().parent, a);
    assert_eq!(fs.read_inode(b).unwrap().parent, ROOT_INO);
    fs.rename(ROOT_INO, b"f", a, b"b", RenameFlags { exchange: true, noreplace: false }, T).unwrap();
    assert_eq!(fs.read_inode(c).unwrap().parent, ROOT_INO);
    assert_eq!(fs.read_inode(a).unwrap().nlink, 2);
    // replace an empty directory
    fs.rename(ROOT_INO, b"c", ROOT_INO, b"e", none, T).unwrap();
    assert_eq!(fs.read_inode(e).unwrap().nlink, 0);
    fs.evict(e).unwrap();
    let _ = f;
    assert_eq!(fsck(&pm, FsckOptions::default()).exit_code, 0, "{}", fsck(&pm, FsckOptions::default()).describe());
}

/// The whiteout's type, rdev, owner, links, parent and directory entry.
fn assert_whiteout(fs: &Fs<&SimPmem>, dir: u64, name: &[u8], w: u64) {
    assert_eq!(fs.lookup(dir, name).unwrap(), Some(w));
    let i = fs.read_inode(w).unwrap();
    assert_eq!((i.mode, i.rdev, i.nlink, i.parent, i.size, i.blocks), (S_IFCHR, 0, 1, dir, 0, 0));
    assert_eq!((i.uid, i.gid, i.ctime), (1000, 100, T));
    let mut ft = None;
    fs.readdir(dir, 0, &mut |n, ino, t, _| {
        if n == name {
            ft = Some((ino, t));
        }
        true
    })
    .unwrap();
    assert_eq!(ft, Some((w, 2)), "DT_CHR entry");
}

#[test]
fn rename_whiteout() {
    let pm = SimPmem::new(16 << 20);
    let mut fs = setup(&pm);
    let (d, _) = fs.create(ROOT_INO, b"d", &dir()).unwrap();
    let (f, _) = fs.create(ROOT_INO, b"f", &reg()).unwrap();
    let (g, _) = fs.create(d, b"g", &reg()).unwrap();
    let (sub, _) = fs.create(ROOT_INO, b"sub", &dir()).unwrap();
    // the caller's mode bits are kept, type and rdev forced
    let wh = NewInode { mode: S_IFREG | 0o600, uid: 1000, gid: 100, rdev: 77, flags: IFLAG_DAX, time: T };
    let wh0 = NewInode { mode: 0, ..wh };
    let none = RenameFlags::default();
    let noreplace = RenameFlags { noreplace: true, exchange: false };
    let exchange = RenameFlags { exchange: true, noreplace: false };
    let root_size = fs.read_inode(ROOT_INO).unwrap().size;

    // plain move across directories: the source name becomes a whiteout
    let (w1, i1) = fs.rename_whiteout(ROOT_INO, b"f", d, b"f2", none, &wh0).unwrap().unwrap();
    assert_eq!((i1.mode, i1.rdev, i1.flags), (S_IFCHR, 0, 0));
    assert_eq!(fs.lookup(d, b"f2").unwrap(), Some(f));
    assert_whiteout(&fs, ROOT_INO, b"f", w1);
    assert_eq!(fs.read_inode(ROOT_INO).unwrap().size, root_size, "one name out, one in");
    assert_eq!(fs.read_inode(d).unwrap().size, 2);

    // over an existing file: the target loses its link, the source name is a whiteout
    let (w2, _) = fs.rename_whiteout(d, b"f2", d, b"g", none, &wh).unwrap().unwrap();
    assert_eq!(fs.read_inode(w2).unwrap().mode, S_IFCHR | 0o600);
    assert_eq!(fs.lookup(d, b"g").unwrap(), Some(f));
    assert_eq!(fs.read_inode(g).unwrap().nlink, 0);
    fs.evict(g).unwrap();
    assert_eq!(fs.read_inode(d).unwrap().size, 2);

    // with NOREPLACE: refused over an existing name (nothing changes), fine otherwise
    assert_eq!(fs.rename_whiteout(d, b"g", ROOT_INO, b"sub", noreplace, &wh0).err(), Some(Error::Exists));
    assert_eq!(fs.lookup(d, b"g").unwrap(), Some(f));
    let next = fs.superblock().next_ino;
    let (w3, _) = fs.rename_whiteout(d, b"g", ROOT_INO, b"g3", noreplace, &wh0).unwrap().unwrap();
    assert_eq!(w3, next, "a fresh inode number");
    assert_whiteout(&fs, d, b"g", w3);

    // with EXCHANGE: Invalid, nothing changes
    assert_eq!(fs.rename_whiteout(ROOT_INO, b"g3", ROOT_INO, b"sub", exchange, &wh0).err(), Some(Error::Invalid));
    assert_eq!(fs.lookup(ROOT_INO, b"g3").unwrap(), Some(f));

    // a directory: it moves with its link counts, a whiteout stays behind
    let root_nlink = fs.read_inode(ROOT_INO).unwrap().nlink;
    let (w4, _) = fs.rename_whiteout(ROOT_INO, b"sub", d, b"sub", none, &wh0).unwrap().unwrap();
    assert_whiteout(&fs, ROOT_INO, b"sub", w4);
    assert_eq!(fs.read_inode(sub).unwrap().parent, d);
    assert_eq!(fs.read_inode(ROOT_INO).unwrap().nlink, root_nlink - 1);
    assert_eq!(fs.read_inode(d).unwrap().nlink, 3);

    // a whiteout can itself be renamed over (overlayfs does when it removes one)
    fs.rename(ROOT_INO, b"g3", ROOT_INO, b"f", none, T).unwrap();
    assert_eq!(fs.read_inode(w1).unwrap().nlink, 0);
    fs.evict(w1).unwrap();

    // two names of one inode: nothing happens, no whiteout
    fs.link(f, ROOT_INO, b"f-link", T).unwrap();
    let next = fs.superblock().next_ino;
    assert_eq!(fs.rename_whiteout(ROOT_INO, b"f", ROOT_INO, b"f-link", none, &wh0).unwrap().map(|x| x.0), None);
    assert_eq!(fs.superblock().next_ino, next);
    assert_eq!(fs.lookup(ROOT_INO, b"f").unwrap(), Some(f));

    // bad names and a missing source: the usual errors, no whiteout made
    assert_eq!(fs.rename_whiteout(ROOT_INO, b"nope", d, b"x", none, &wh0).err(), Some(Error::NotFound));
    assert_eq!(fs.rename_whiteout(ROOT_INO, b"..", d, b"x", none, &wh0).err(), Some(Error::Invalid));
    assert_eq!(fs.superblock().next_ino, next);

    // it survives a remount and fsck is clean
    let m = fs.unmount(0).unwrap();
    let fs = Fs::mount(m, &MountOptions::default()).unwrap();
    assert_whiteout(&fs, ROOT_INO, b"sub", w4);
    assert_whiteout(&fs, d, b"g", w3);
    drop(fs);
    let r = fsck(&pm, FsckOptions::default());
    assert_eq!(r.exit_code, 0, "{}", r.describe());
}

#[test]
fn tmpfile_link_and_orphan_reaping() {
    let pm = SimPmem::new(16 << 20);
    let mut fs = setup(&pm);
    let (t, ti) = fs.tmpfile(ROOT_INO, &reg()).unwrap();
    assert_eq!(ti.nlink, 0);
    fs.link(t, ROOT_INO, b"linked", T).unwrap();
    assert_eq!(fs.read_inode(t).unwrap().nlink, 1);
    let (t2, _) = fs.tmpfile(ROOT_INO, &reg()).unwrap();
    ferrofs_tools::harness::write(&mut fs, t2, 0, &[1u8; 50000], T).unwrap();
    let free = fs.statfs().free_blocks;
    // "crash" with the tmpfile open: mount reaps it
    let m = fs.into_media();
    let fs = Fs::mount(m, &MountOptions::default()).unwrap();
    assert_eq!(fs.mount_report().orphans_reaped, 1);
    assert!(fs.statfs().free_blocks > free);
    assert_eq!(fs.read_inode(t2).err(), Some(Error::NotFound));
    assert_eq!(fs.read_inode(t).unwrap().nlink, 1);
    assert_eq!(fsck(&pm, FsckOptions::default()).exit_code, 0);
}

#[test]
fn xattr_limits_and_modes() {
    let pm = SimPmem::new(16 << 20);
    let mut fs = setup(&pm);
    let (f, _) = fs.create(ROOT_INO, b"f", &reg()).unwrap();
    let big = vec![0x5au8; 65536];
    fs.xattr_set(f, 1, b"big", &big, XattrMode::Create).unwrap();
    assert_eq!(fs.xattr_set(f, 1, b"big", b"v", XattrMode::Create).err(), Some(Error::Exists));
    assert_eq!(fs.xattr_set(f, 1, b"nope", b"v", XattrMode::Replace).err(), Some(Error::NoData));
    assert_eq!(fs.xattr_set(f, 1, b"huge", &vec![0u8; 65537], XattrMode::Any).err(), Some(Error::TooBig));
    let mut buf = vec![0u8; 70000];
    assert_eq!(fs.xattr_get(f, 1, b"big", &mut []).unwrap(), 65536);
    assert_eq!(fs.xattr_get(f, 1, b"big", &mut buf[..100]).err(), Some(Error::Range));
    assert_eq!(fs.xattr_get(f, 1, b"big", &mut buf).unwrap(), 65536);
    assert_eq!(&buf[..65536], &big[..]);
    assert_eq!(fs.xattr_get(f, 2, b"big", &mut buf).err(), Some(Error::NoData));
    fs.xattr_set(f, 2, b"big", b"", XattrMode::Any).unwrap();
    assert_eq!(fs.xattr_get(f, 2, b"big", &mut buf).unwrap(), 0);
    let mut names = Vec::new();
    fs.xattr_list(f, &mut |ns, n, l| names.push((ns, n.to_vec(), l))).unwrap();
    names.sort();
    assert_eq!(names, vec![(1, b"big".to_vec(), 65536), (2, b"big".to_vec(), 0)]);
    let free = fs.statfs().free_blocks;
    fs.xattr_set(f, 1, b"big", b"small now", XattrMode::Replace).unwrap();
    assert_eq!(fs.statfs().free_blocks, free + 16);
    fs.xattr_remove(f, 1, b"big").unwrap();
    assert_eq!(fs.xattr_remove(f, 1, b"big").err(), Some(Error::NoData));
    assert_eq!(fsck(&pm, FsckOptions::default()).exit_code, 0);
}

/// FIEMAP_FLAG_XATTR's answer: the records' btree entries (read back from
/// the media, they hold the names) and the external values' blocks.
#[test]
fn xattr_extents_name_the_bytes() {
    let pm = SimPmem::new(16 << 20);
    let mut fs = setup(&pm);
    let (f, _) = fs.create(ROOT_INO, b"f", &reg()).unwrap();
    let (g, _) = fs.create(ROOT_INO, b"g", &reg()).unwrap();
    let ext = |fs: &Fs<&SimPmem>, ino| {
        let mut v = Vec::new();
        fs.xattr_extents(ino, &mut |a, l, i| {
            v.push((a, l, i));
            true
        })
        .unwrap();
        v
    };
    assert!(ext(&fs, f).is_empty());
    // generic/425's load: 409 small attributes, interleaved with another inode's
    for i in 0..409 {
        let n = format!("{i:010}");
        fs.xattr_set(f, 1, n.as_bytes(), n.as_bytes(), XattrMode::Create).unwrap();
        fs.xattr_set(g, 1, n.as_bytes(), b"g", XattrMode::Create).unwrap();
    }
    fs.xattr_set(f, 1, b"external", &[0xa5u8; 9000], XattrMode::Create).unwrap();
    let es = 24 + 512;
    let v = ext(&fs, f);
    let img = pm.snapshot();
    let mut names = BTreeSet::new();
    let mut ext_blocks = Vec::new();
    for &(a, l, inline) in &v {
        assert!(a + l <= img.len() as u64);
        if inline {
            assert_eq!(l % es, 0);
            for e in (a..a + l).step_by(es as usize) {
                let r = &img[(e + 24) as usize..(e + es) as usize];
                names.insert(r[XA_NAME..XA_NAME + r[XA_NAMELEN] as usize].to_vec());
            }
        } else {
            assert_eq!((a % BLOCK_SIZE, l), (0, 3 * BLOCK_SIZE));
            ext_blocks.push(img[a as usize..(a + 9000) as usize].to_vec());
        }
    }
    assert_eq!(names.len(), 410, "every record once, none of g's");
    assert!(names.contains(&b"0000000408"[..]) && names.contains(&b"external"[..]));
    assert_eq!(ext_blocks, vec![vec![0xa5u8; 9000]]);
    // merged: entries sharing a leaf make one range, so far fewer than 410
    assert!(v.len() > 1 && v.len() < 200, "{} ranges", v.len());
    // a callback that stops is not called again
    let mut calls = 0;
    fs.xattr_extents(f, &mut |_, _, _| {
        calls += 1;
        false
    })
    .unwrap();
    assert_eq!(calls, 1);
    // gone with the attributes
    for i in 0..409 {
        fs.xattr_remove(f, 1, format!("{i:010}").as_bytes()).unwrap();
    }
    fs.xattr_remove(f, 1, b"external").unwrap();
    assert!(ext(&fs, f).is_empty());
    assert!(!ext(&fs, g).is_empty());
}
