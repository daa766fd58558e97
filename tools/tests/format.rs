//! Format, mount validation, superblock codec, crc32c, size of Fs.

use ferrofs_engine::*;
use ferrofs_tools::SimPmem;

const MB: u64 = 1 << 20;

fn fmt(m: &SimPmem) {
    let o = FormatOptions { label: b"t", uuid: [7; 16], size_bytes: 0, time: Time::default(), journal_slots: 64, stripe: (0, 0) };
    Fs::format(m, &o).unwrap();
}

fn mount(m: &SimPmem) -> Result<Fs<&SimPmem>> {
    Fs::mount(m, &MountOptions::default())
}

#[test]
fn crc32c_vectors() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c(b""), 0);
    let mut c = Crc32c::new();
    c.update(b"1234");
    c.update(b"56789");
    assert_eq!(c.finish(), 0xE306_9283);
    let z = [0u8; 32];
    assert_eq!(crc32c(&z), 0x8A91_36AA);
}

#[test]
fn fs_struct_is_small() {
    let n = core::mem::size_of::<Fs<&SimPmem>>();
    eprintln!("size_of::<Fs<_>>() = {n}");
    assert!(n <= 2048, "Fs is {n} bytes");
}

#[test]
fn format_then_mount() {
    let m = SimPmem::new(8 * MB);
    fmt(&m);
    let fs = mount(&m).unwrap();
    let root = fs.read_inode(fs.root_ino()).unwrap();
    assert!(root.is_dir());
    assert_eq!(root.nlink, 2);
    assert_eq!(root.parent, ROOT_INO);
    let st = fs.statfs();
    assert_eq!(st.blocks, 2048);
    assert!(st.free_blocks > 1800);
    assert_eq!(st.files, 1);
    let m2 = fs.unmount(5).unwrap();
    let fs = mount(m2).unwrap();
    assert!(!fs.mount_report().was_dirty);
}

#[test]
fn superblock_roundtrip() {
    let m = SimPmem::new(8 * MB);
    fmt(&m);
    let img = m.peek(0, SB_SIZE);
    let b: [u8; SB_SIZE] = img.try_into().unwrap();
    let sb = Superblock::decode(&b, 0).unwrap();
    let mut b2 = [0u8; SB_SIZE];
    sb.encode(&mut b2);
    assert_eq!(b, b2);
    assert_eq!(&sb.label[..1], b"t");
    sb.check_geometry(2048).unwrap();
    // the backup carries the same geometry
    let bk: [u8; SB_SIZE] = m.peek(2047 * BLOCK_SIZE, SB_SIZE).try_into().unwrap();
    let bsb = Superblock::decode(&bk, 2047).unwrap();
    assert_eq!(bsb.data_start, sb.data_start);
    assert_eq!(bsb.uuid, sb.uuid);
}

#[test]
fn mount_rejects_bad_magic() {
    let m = SimPmem::new(8 * MB);
    assert_eq!(mount(&m).err(), Some(Error::BadMagic));
    fmt(&m);
    m.corrupt_byte(0, 0xff);
    assert_eq!(mount(&m).err(), Some(Error::BadMagic));
    assert_eq!(Error::BadMagic.errno(), 22);
}

#[test]
fn mount_rejects_bad_crc() {
    let m = SimPmem::new(8 * MB);
    fmt(&m);
    m.corrupt_byte(80, 0x01); // label byte
    let e = mount(&m).err().unwrap();
    assert_eq!(e, Error::Corrupt { what: "superblock", block: 0 });
    assert_eq!(e.errno(), 117);
}

#[test]
fn mount_rejects_unknown_incompat() {
    let m = SimPmem::new(8 * MB);
    fmt(&m);
    let mut b: [u8; SB_SIZE] = m.peek(0, SB_SIZE).try_into().unwrap();
    b[48] |= 0x80;
    let c = sb_crc(&b);
    b[8..12].copy_from_slice(&c.to_le_bytes());
    Media::write(&m, 0, &b);
    assert_eq!(mount(&m).err(), Some(Error::UnsupportedFeature { incompat: 0x80 }));
}

#[test]
fn unknown_ro_compat_mounts_read_only() {
    let m = SimPmem::new(8 * MB);
    fmt(&m);
    let mut b: [u8; SB_SIZE] = m.peek(0, SB_SIZE).try_into().unwrap();
    b[40] |= 0x01;
    let c = sb_crc(&b);
    b[8..12].copy_from_slice(&c.to_le_bytes());
    Media::write(&m, 0, &b);
    let mut fs = mount(&m).unwrap();
    assert!(fs.is_read_only());
    let a = NewInode { mode: S_IFREG | 0o644, ..Default::default() };
    assert_eq!(fs.create(ROOT_INO, b"x", &a).err(), Some(Error::ReadOnly));
}

#[test]
fn device_too_small() {
    let m = SimPmem::new(8 * MB);
    fmt(&m);
    let img = m.snapshot();
    let small = SimPmem::from_image(img[..4 * MB as usize].to_vec(), false);
    assert!(matches!(mount(&small).err(), Some(Error::DeviceTooSmall { need_blocks: 2048, have_blocks: 1024 })));
    let tiny = SimPmem::new(64 * 4096);
    let o = FormatOptions { label: b"", uuid: [1; 16], size_bytes: 0, time: Time::default(), journal_slots: 64, stripe: (0, 0) };
    assert!(matches!(Fs::format(&tiny, &o), Err(Error::DeviceTooSmall { .. })));
    let o2 = FormatOptions { size_bytes: 16 * MB, ..o };
    assert!(matches!(Fs::format(&m, &o2), Err(Error::DeviceTooSmall { .. })));
    assert_eq!(mount(&SimPmem::new(4096)).err(), Some(Error::DeviceTooSmall { need_blocks: 2, have_blocks: 1 }));
}

#[test]
fn size_limit_option() {
    let m = SimPmem::new(8 * MB);
    let o = FormatOptions { label: b"", uuid: [1; 16], size_bytes: 4 * MB, time: Time::default(), journal_slots: 64, stripe: (0, 0) };
    Fs::format(&m, &o).unwrap();
    let fs = mount(&m).unwrap();
    assert_eq!(fs.statfs().blocks, 1024);
}

/// A media like the kernel's (a pointer and a length): the kernel keeps `Fs`
/// in a mutex, which needs `Fs: Send`.
struct KernelLikeMedia {
    _base: usize,
    _len: u64,
}

impl Media for KernelLikeMedia {
    fn size(&self) -> u64 {
        0
    }
    fn read(&self, _: u64, _: &mut [u8]) -> core::result::Result<(), MediaError> {
        Ok(())
    }
    fn write(&self, _: u64, _: &[u8]) {}
    fn zero(&self, _: u64, _: u64) {}
    fn copy(&self, _: u64, _: u64, _: u64) -> core::result::Result<(), MediaError> {
        Ok(())
    }
    fn flush(&self, _: u64, _: u64) {}
    fn fence(&self) {}
}

#[test]
fn fs_is_send_and_small_with_kernel_like_media() {
    fn assert_send<T: Send>() {}
    assert_send::<Fs<KernelLikeMedia>>();
    assert!(core::mem::size_of::<Fs<KernelLikeMedia>>() <= 2048);
}

#[test]
fn needs_recovery_and_norecovery_mounts_write_nothing() {
    let m = SimPmem::new(8 * MB);
    fmt(&m);
    assert!(!Fs::needs_recovery(&m).unwrap(), "a fresh filesystem is clean");
    let mut fs = mount(&m).unwrap();
    let reg = NewInode { mode: S_IFREG | 0o644, ..Default::default() };
    let (f, _) = fs.create(ROOT_INO, b"f", &reg).unwrap();
    let (t, _) = fs.tmpfile(ROOT_INO, &reg).unwrap();
    // a crash (or FS_IOC_SHUTDOWN): dropped without unmounting
    let _ = fs.into_media();
    assert!(Fs::needs_recovery(&m).unwrap());
    let before = m.snapshot();
    let fs = Fs::mount_norecovery(&m, 5).unwrap();
    assert!(fs.is_read_only());
    assert_eq!(fs.lookup(ROOT_INO, b"f").unwrap(), Some(f));
    assert!(fs.read_inode(t).is_ok(), "the orphan is still there: nothing reaped");
    drop(fs);
    assert!(m.snapshot() == before, "norecovery wrote to the device");
    assert!(Fs::needs_recovery(&m).unwrap());
    // a normal mount recovers (reaps the orphan); after unmount it is clean
    let fs = mount(&m).unwrap();
    assert!(fs.mount_report().was_dirty && fs.mount_report().orphans_reaped == 1);
    fs.unmount(6).unwrap();
    assert!(!Fs::needs_recovery(&m).unwrap());
}

/// FS_IOC_SETFSLABEL's engine half: the label is stored in one transaction
/// (a crash at any fence leaves the old label or the new one, fsck clean),
/// at most LABEL_MAX bytes and no NUL; an empty label clears it.
#[test]
fn set_label_is_transactional_and_bounded() {
    use ferrofs_tools::fsck::{fsck, FsckOptions};
    use ferrofs_tools::{CrashMode, CrashView};
    let label = |fs: &Fs<&SimPmem>| {
        let l = fs.superblock().label;
        l[..l.iter().position(|&b| b == 0).unwrap_or(LABEL_MAX)].to_vec()
    };
    let m = SimPmem::new(16 * MB);
    fmt(&m);
    let mut fs = mount(&m).unwrap();
    assert_eq!(fs.set_label(&[b'x'; LABEL_MAX + 1]), Err(Error::Invalid));
    assert_eq!(fs.set_label(b"a\0b"), Err(Error::Invalid));
    assert_eq!(label(&fs), b"t", "a refused label changes nothing");
    fs.set_label(&[b'm'; LABEL_MAX]).unwrap();
    fs.unmount(1).unwrap();
    let tp = SimPmem::from_image(m.snapshot(), true);
    let mut fs = mount(&tp).unwrap();
    assert_eq!(label(&fs), vec![b'm'; LABEL_MAX]);
    let seen = std::rc::Rc::new(std::cell::RefCell::new([0u32; 2]));
    let s = seen.clone();
    tp.set_fence_hook(Some(Box::new(move |v: &CrashView| {
        for mode in [CrashMode::DurableOnly, CrashMode::AllStored, CrashMode::Random(v.fence_no)] {
            let p = SimPmem::from_image(v.image(mode), false);
            let fs = mount(&p).unwrap();
            let rep = fsck(&p, FsckOptions::default());
            assert_eq!(rep.exit_code, 0, "fence {} {mode:?}:\n{}", v.fence_no, rep.describe());
            let l = label(&fs);
            assert!(l == vec![b'm'; LABEL_MAX] || l == b"new", "fence {} {mode:?}: label {l:?}", v.fence_no);
            s.borrow_mut()[usize::from(l == b"new")] += 1;
        }
    })));
    fs.set_label(b"new").unwrap();
    tp.set_fence_hook(None);
    let [old, new] = *seen.borrow();
    assert!(old > 0 && new > 0, "crash states: {old} old, {new} new");
    fs.set_label(b"").unwrap();
    assert_eq!(label(&fs), b"");
}
