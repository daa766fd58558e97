//! mkfs-ferrofs and fsck-ferrofs as a user runs them, on image files.

use std::process::Command;

fn tmp(name: &str, size: u64) -> String {
    let p = std::env::temp_dir().join(format!("ferrofs-cli-{}-{name}", std::process::id()));
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(size).unwrap();
    p.to_string_lossy().into_owned()
}

fn mkfs(args: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_mkfs-ferrofs")).args(args).output().unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr))
}

fn fsck(args: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_fsck-ferrofs")).args(args).output().unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr))
}

#[test]
fn mkfs_and_fsck_on_image_files() {
    let img = tmp("a", 64 << 20);
    let (rc, out) = mkfs(&["-L", "scratch", &img]);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("16384 blocks") && out.contains("label 'scratch'"), "{out}");
    let (rc, out) = mkfs(&[&img]);
    assert_eq!(rc, 1);
    assert!(out.contains("existing ferrofs"), "{out}");
    let (rc, out) = mkfs(&["-f", "-q", "-s", "16m", &img]);
    assert_eq!(rc, 0, "{out}");
    assert!(out.is_empty(), "-q printed: {out}");
    let (rc, out) = fsck(&["-n", &img]);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("clean"));
    // corrupt the bitmap header: fsck -n exits 4 naming it, -y repairs (exit 1)
    let mut data = std::fs::read(&img).unwrap();
    let bitmap_blk = 1 + 1 + 5 + 512;
    data[bitmap_blk * 4096 + 100] ^= 0xff;
    std::fs::write(&img, &data).unwrap();
    let (rc, out) = fsck(&["-n", &img]);
    assert_eq!(rc, 4, "{out}");
    assert!(out.contains("free space bitmap"), "{out}");
    assert_eq!(std::fs::read(&img).unwrap(), data, "fsck -n wrote");
    let (rc, out) = fsck(&["-y", &img]);
    assert_eq!(rc, 1, "{out}");
    let (rc, out) = fsck(&["-n", &img]);
    assert_eq!(rc, 0, "{out}");
    // operational errors
    let (rc, _) = fsck(&["-n", "/nonexistent/ferrofs"]);
    assert_eq!(rc, 8);
    let (rc, out) = mkfs(&["-b", "1024", &img]);
    assert_eq!(rc, 1, "{out}");
    let small = tmp("small", 64 * 1024);
    let (rc, out) = mkfs(&[&small]);
    assert_eq!(rc, 1);
    assert!(out.contains("DeviceTooSmall"), "{out}");
    let _ = std::fs::remove_file(&img);
    let _ = std::fs::remove_file(&small);
}

#[test]
fn mkfs_refuses_other_filesystems() {
    let img = tmp("x", 16 << 20);
    let mut d = vec![0u8; 16 << 20];
    d[..4].copy_from_slice(b"XFSB");
    std::fs::write(&img, &d).unwrap();
    let (rc, out) = mkfs(&[&img]);
    assert_eq!(rc, 1);
    assert!(out.contains("xfs"), "{out}");
    d[..4].fill(0);
    d[1080] = 0x53;
    d[1081] = 0xEF;
    std::fs::write(&img, &d).unwrap();
    let (rc, out) = mkfs(&[&img]);
    assert_eq!(rc, 1);
    assert!(out.contains("ext2/ext3/ext4"), "{out}");
    let (rc, out) = mkfs(&["-f", &img]);
    assert_eq!(rc, 0, "{out}");
    let _ = std::fs::remove_file(&img);
}
