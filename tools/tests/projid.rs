//! Project IDs (project quota): stored in every inode type across
//! remounts, set with the FS_IOC_FSSETXATTR call, inherited from a
//! PROJINHERIT directory, and the EXDEV rule for links and renames into
//! one (XFS's and ext4's). Inodes written before project IDs existed read
//! as project 0.

use ferrofs_engine::*;
use ferrofs_tools::fsck::{fsck, FsckOptions};
use ferrofs_tools::SimPmem;

const MB: u64 = 1 << 20;
const T: Time = Time { sec: 7, nsec: 0 };

fn new_fs(pm: &SimPmem) -> Fs<&SimPmem> {
    let o = FormatOptions { label: b"projid", uuid: [5; 16], size_bytes: 0, time: T, journal_slots: 64, stripe: (0, 0) };
    Fs::format(pm, &o).unwrap();
    Fs::mount(pm, &MountOptions::default()).unwrap()
}

fn remount<'a>(pm: &'a SimPmem, fs: Fs<&'a SimPmem>) -> Fs<&'a SimPmem> {
    fs.unmount(8).unwrap();
    let rep = fsck(pm, FsckOptions::default());
    assert_eq!(rep.exit_code, 0, "{}", rep.describe());
    Fs::mount(pm, &MountOptions::default()).unwrap()
}

fn new(mode: u32) -> NewInode {
    NewInode { mode, time: T, ..Default::default() }
}

fn setproj(fs: &mut Fs<&SimPmem>, ino: u64, flags: u32, projid: u32) -> Result<()> {
    let i = fs.read_inode(ino).unwrap();
    fs.set_fsxattr(ino, flags, i.extsize, i.cowextsize, Some(projid), T)
}

/// The longest inline symlink target: it fills bytes 112..256, so the
/// project ID of a symlink must live below 112.
const LONG: [u8; INLINE_SYMLINK_MAX] = [b'x'; INLINE_SYMLINK_MAX];

#[test]
fn project_ids_are_stored_in_every_inode_type() {
    let pm = SimPmem::new(16 * MB);
    let mut fs = new_fs(&pm);
    let (f, _) = fs.create(ROOT_INO, b"f", &new(S_IFREG | 0o644)).unwrap();
    let (d, _) = fs.mkdir(ROOT_INO, b"d", &new(S_IFDIR | 0o755)).unwrap();
    let (l, _) = fs.symlink(ROOT_INO, b"l", &LONG, &new(0o777)).unwrap();
    let (n, _) = fs.mknod(ROOT_INO, b"fifo", &new(0o010644)).unwrap();
    for (ino, p) in [(f, 10), (d, 11), (l, 0xffff_fffe), (n, 13)] {
        assert_eq!(fs.read_inode(ino).unwrap().projid, 0, "a new inode outside a project is in project 0");
        let flags = fs.read_inode(ino).unwrap().flags;
        setproj(&mut fs, ino, flags, p).unwrap();
    }
    // hints and project ID side by side, in one call
    fs.set_fsxattr(f, IFLAG_EXTSIZE | IFLAG_NODUMP, 16, 0, Some(20), T).unwrap();
    let mut fs = remount(&pm, fs);
    let i = fs.read_inode(f).unwrap();
    assert_eq!((i.projid, i.extsize, i.flags), (20, 16, IFLAG_EXTSIZE | IFLAG_NODUMP));
    assert_eq!(fs.read_inode(d).unwrap().projid, 11);
    assert_eq!(fs.read_inode(l).unwrap().projid, 0xffff_fffe);
    assert_eq!(fs.read_inode(n).unwrap().projid, 13);
    // the symlink's whole inline target survives its project ID
    let mut b = [0u8; 256];
    assert_eq!(fs.read_link(l, &mut b).unwrap(), LONG.len());
    assert_eq!(&b[..LONG.len()], &LONG[..]);
    // setattr (write_inode) and the hint-only call leave the project ID
    let mut w = fs.read_inode(f).unwrap();
    w.projid = 99;
    w.uid = 42;
    fs.write_inode(f, &w).unwrap();
    fs.set_flags_hints(f, IFLAG_EXTSIZE, 16, 0, T).unwrap();
    let i = fs.read_inode(f).unwrap();
    assert_eq!((i.projid, i.uid), (20, 42));
    // the walk the quota recount uses reports it too
    let mut out = [(0u64, Inode::default()); 8];
    let k = fs.inodes_after(0, &mut out).unwrap();
    assert!(out[..k].iter().any(|&(ino, i)| ino == d && i.projid == 11));
    let _ = remount(&pm, fs);
}

#[test]
fn projinherit_is_for_directories_and_passes_the_id_on() {
    let pm = SimPmem::new(16 * MB);
    let mut fs = new_fs(&pm);
    let (d, _) = fs.mkdir(ROOT_INO, b"d", &new(S_IFDIR | 0o755)).unwrap();
    let (f0, _) = fs.create(ROOT_INO, b"f0", &new(S_IFREG | 0o644)).unwrap();
    assert_eq!(setproj(&mut fs, f0, IFLAG_PROJINHERIT, 5), Err(Error::Invalid), "PROJINHERIT on a file");
    setproj(&mut fs, d, IFLAG_PROJINHERIT, 7).unwrap();
    let (f, _) = fs.create(d, b"f", &new(S_IFREG | 0o644)).unwrap();
    let (sd, _) = fs.mkdir(d, b"sub", &new(S_IFDIR | 0o755)).unwrap();
    let (g, _) = fs.create(sd, b"g", &new(S_IFREG | 0o644)).unwrap();
    let (l, _) = fs.symlink(d, b"l", &LONG, &new(0o777)).unwrap();
    let (n, _) = fs.mknod(d, b"fifo", &new(0o010644)).unwrap();
    let (t, _) = fs.tmpfile(d, &new(S_IFREG | 0o600)).unwrap();
    // a caller cannot smuggle the flag in through a new inode's flags
    let (x, _) = fs.mkdir(ROOT_INO, b"x", &NewInode { flags: IFLAG_PROJINHERIT, ..new(S_IFDIR | 0o755) }).unwrap();
    // an O_TMPFILE inode is an orphan, gone after the remount
    assert_eq!(fs.read_inode(t).unwrap().projid, 7, "O_TMPFILE");
    let fs = remount(&pm, fs);
    let p = |ino| {
        let i = fs.read_inode(ino).unwrap();
        (i.projid, i.flags & IFLAG_PROJINHERIT != 0)
    };
    assert_eq!(p(f), (7, false));
    assert_eq!(p(sd), (7, true), "a subdirectory takes the flag too");
    assert_eq!(p(g), (7, false), "and passes the ID on");
    assert_eq!(p(l), (7, false));
    assert_eq!(p(n), (7, false));
    assert_eq!(p(x), (0, false));
    assert_eq!(p(f0), (0, false));
    let mut b = [0u8; 256];
    assert_eq!(fs.read_link(l, &mut b).unwrap(), LONG.len());
}

#[test]
fn links_and_renames_into_another_project_are_exdev() {
    let pm = SimPmem::new(16 * MB);
    let mut fs = new_fs(&pm);
    let (a, _) = fs.mkdir(ROOT_INO, b"a", &new(S_IFDIR | 0o755)).unwrap();
    let (b, _) = fs.mkdir(ROOT_INO, b"b", &new(S_IFDIR | 0o755)).unwrap();
    setproj(&mut fs, a, IFLAG_PROJINHERIT, 1).unwrap();
    setproj(&mut fs, b, IFLAG_PROJINHERIT, 2).unwrap();
    let (fa, _) = fs.create(a, b"fa", &new(S_IFREG | 0o644)).unwrap();
    let (fb, _) = fs.create(b, b"fb", &new(S_IFREG | 0o644)).unwrap();
    let (out, _) = fs.create(ROOT_INO, b"out", &new(S_IFREG | 0o644)).unwrap();
    let plain = RenameFlags::default();
    let xdev = Err(Error::CrossProject);
    assert_eq!(Error::CrossProject.errno(), 18);
    assert_eq!(fs.link(fa, b, b"l", T), xdev);
    assert_eq!(fs.link(out, a, b"l", T), xdev, "project 0 into project 1");
    assert_eq!(fs.rename(a, b"fa", b, b"fa", plain, T), xdev);
    assert_eq!(fs.rename(ROOT_INO, b"out", a, b"out", plain, T), xdev);
    let exch = RenameFlags { exchange: true, ..plain };
    assert_eq!(fs.rename(a, b"fa", b, b"fb", exch, T), xdev);
    // out of a project into a directory without PROJINHERIT is allowed
    // (the root here), as within the same project
    fs.link(fa, ROOT_INO, b"fa-link", T).unwrap();
    fs.link(fa, a, b"fa2", T).unwrap();
    fs.rename(b, b"fb", ROOT_INO, b"fb", plain, T).unwrap();
    // nothing moved on the refused calls
    assert_eq!(fs.lookup(b, b"fa").unwrap(), None);
    assert_eq!(fs.lookup(a, b"out").unwrap(), None);
    assert_eq!(fs.read_inode(fa).unwrap().nlink, 3);
    assert_eq!(fs.lookup(ROOT_INO, b"fb").unwrap(), Some(fb));
    let _ = remount(&pm, fs);
}
