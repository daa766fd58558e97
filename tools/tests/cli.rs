//! mkfs-ferrofs and fsck-ferrofs as a user runs them, on image files.

use std::process::Command;

fn tmp(name: &str, size: u64) -> String {
    let p = std::env::temp_dir().join(format!("ferrofs-cli-{}-{name}", std::process::id()));
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(size).unwrap();
    p.to_string_lossy().into_owned()
}

/// Runs one of our tools: its exit code, and stdout then stderr.
fn tool(exe: &str, args: &[&str]) -> (i32, String) {
    let o = Command::new(exe).args(args).output().unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr))
}

fn mkfs(args: &[&str]) -> (i32, String) {
    tool(env!("CARGO_BIN_EXE_mkfs-ferrofs"), args)
}

fn fsck(args: &[&str]) -> (i32, String) {
    tool(env!("CARGO_BIN_EXE_fsck-ferrofs"), args)
}

fn db(args: &[&str]) -> (i32, String) {
    tool(env!("CARGO_BIN_EXE_ferrofs-db"), args)
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

/// `-d su=,sw=` as xfstests' _scratch_mkfs_geom passes it: the geometry
/// lands in the superblock and mkfs says it; each bad spelling is refused
/// with the reason, before anything is written; fsck names a superblock
/// whose width is not whole units.
#[test]
fn mkfs_stripe_geometry() {
    let img = tmp("stripe", 64 << 20);
    let (rc, out) = mkfs(&["-d", "su=32k,sw=4", &img]);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("stripe: unit 8 blocks (32 KiB), width 32 blocks (4 units)"), "{out}");
    assert_eq!(db(&[&img, "get", "stripe_unit"]), (0, "8\n".to_string()));
    assert_eq!(db(&[&img, "get", "stripe_width"]), (0, "32\n".to_string()));
    let (rc, out) = mkfs(&["-f", "-d", "su=2m", &img]);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(db(&[&img, "get", "stripe_width"]), (0, "512\n".to_string()));
    let before = std::fs::read(&img).unwrap();
    for (opt, why) in [
        ("su=6k,sw=2", "not a whole number of 4096-byte blocks"),
        ("su=0", "not a whole number"),
        ("su=16k,sw=0", "bad stripe width sw=0"),
        ("sw=4", "needs a stripe unit su="),
        ("su=16k,swidth=4", "unknown data option 'swidth=4'"),
        ("su=16m,sw=8", "wider than the"),
    ] {
        let (rc, out) = mkfs(&["-f", "-d", opt, &img]);
        assert_eq!(rc, 1, "-d {opt}: {out}");
        assert!(out.contains(why), "-d {opt}: {out}");
    }
    assert!(std::fs::read(&img).unwrap() == before, "a refused mkfs wrote");
    let (rc, out) = fsck(&["-n", &img]);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(db(&[&img, "set", "stripe_width", "768"]).0, 0);
    let (rc, out) = fsck(&["-n", &img]);
    assert_eq!(rc, 4, "{out}");
    assert!(out.contains("stripe geometry: unit 512 and width 768 blocks") && out.contains("would reset to unit 512 width 512"), "{out}");
    let (rc, out) = fsck(&["-y", &img]);
    assert_eq!(rc, 1, "{out}");
    assert_eq!(db(&[&img, "get", "stripe_width"]), (0, "512\n".to_string()));
    let (rc, out) = fsck(&["-n", &img]);
    assert_eq!(rc, 0, "{out}");
    let _ = std::fs::remove_file(&img);
}

/// Runs a system mkfs (or other signature writer) on `img`; false when the
/// tool is not installed on this machine.
fn foreign(tool: &str, args: &[&str], img: &str, post: &[&str]) -> bool {
    let path = ["/sbin", "/usr/sbin", "/usr/bin", "/bin"].iter().map(|d| format!("{d}/{tool}")).find(|p| std::path::Path::new(p).exists());
    let Some(path) = path else { return false };
    let o = Command::new(path).args(args).arg(img).args(post).output().unwrap();
    assert!(o.status.success(), "{tool} failed: {}", String::from_utf8_lossy(&o.stderr));
    true
}

#[test]
fn mkfs_refuses_other_filesystems() {
    // 320 MiB sparse: mkfs.xfs wants more than 300 MB
    let size = 320u64 << 20;
    let img = tmp("x", size);
    let blank = |img: &str| {
        let f = std::fs::File::create(img).unwrap();
        f.set_len(size).unwrap();
    };
    // mkfs writes its superblock, journal and bitmap in the first MiBs
    let head = |img: &str| {
        use std::io::Read;
        let mut b = vec![0u8; 4 << 20];
        std::fs::File::open(img).unwrap().read_exact(&mut b).unwrap();
        b
    };
    // Signatures mkfs must find through libblkid: filesystems xfstests'
    // generic/740 makes (bfs, minix and the rest), swap, a partition table.
    let mut tried = 0;
    let cases: &[(&str, &[&str], &[&str], &str)] = &[
        ("mkfs.ext4", &["-F", "-q"], &[], "existing ext4 filesystem"),
        ("mkfs.bfs", &[], &[], "existing bfs filesystem"),
        ("mkfs.minix", &[], &["2000"], "existing minix filesystem"),
        ("mkswap", &[], &[], "existing swap filesystem"),
        ("mkfs.xfs", &["-f", "-q"], &[], "existing xfs filesystem"),
    ];
    for (tool, args, post, want) in cases {
        blank(&img);
        if !foreign(tool, args, &img, post) {
            eprintln!("{tool} not installed: case skipped");
            continue;
        }
        tried += 1;
        let before = head(&img);
        let (rc, out) = mkfs(&[&img]);
        assert_eq!(rc, 1, "{tool}: {out}");
        assert!(out.contains(want), "{tool}: {out}");
        assert!(head(&img) == before, "{tool}: mkfs wrote without -f");
    }
    assert!(tried >= 3, "fewer than 3 foreign mkfs tools on this machine (util-linux, e2fsprogs)");
    // a DOS partition table, written by hand (sfdisk may be absent)
    blank(&img);
    let mut d = vec![0u8; 512];
    d[446 + 4] = 0x83; // partition 1: Linux
    d[446 + 8] = 1;
    d[446 + 12] = 0x10;
    d[510] = 0x55;
    d[511] = 0xAA;
    {
        use std::io::Write;
        std::fs::OpenOptions::new().write(true).open(&img).unwrap().write_all(&d).unwrap();
    }
    let (rc, out) = mkfs(&[&img]);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("partition table (dos)"), "{out}");
    let (rc, out) = mkfs(&["-f", &img]);
    assert_eq!(rc, 0, "{out}");
    // an all-zero image is formatted without -f
    blank(&img);
    let (rc, out) = mkfs(&[&img]);
    assert_eq!(rc, 0, "{out}");
    let _ = std::fs::remove_file(&img);
}
