#!/usr/bin/env python3
"""Namespace semantics: create/open flags, mkdir/rmdir, rename, link, symlink,
readdir, special files, attributes. Every errno is asserted."""
import ctypes
import os
import stat
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import RENAME_EXCHANGE, RENAME_NOREPLACE, expect_errno, link_fd, pattern, renameat2

libc = ctypes.CDLL("libc.so.6", use_errno=True)


def write(path, data, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
    fd = os.open(path, flags, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_create_flags():
    write("f", b"hello")
    expect_errno("EEXIST", os.open, "f", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    fd = os.open("f", os.O_WRONLY | os.O_APPEND)
    os.write(fd, b" world")
    os.close(fd)
    assert read("f") == b"hello world"
    os.close(os.open("f", os.O_WRONLY | os.O_TRUNC))
    assert read("f") == b"" and os.stat("f").st_size == 0
    expect_errno("ENOENT", os.open, "missing", os.O_RDONLY)
    expect_errno("ENOTDIR", os.open, "f/x", os.O_RDONLY)
    expect_errno("ENAMETOOLONG", os.open, "n" * 256, os.O_CREAT | os.O_WRONLY)
    write("n" * 255, b"x")
    assert read("n" * 255) == b"x"


def test_tmpfile():
    fd = os.open(".", os.O_TMPFILE | os.O_RDWR, 0o600)
    os.write(fd, b"tmp data")
    os.lseek(fd, 0, 0)
    assert os.read(fd, 100) == b"tmp data"
    assert os.fstat(fd).st_nlink == 0
    assert os.listdir(".") == []
    link_fd(fd, "linked")
    os.close(fd)
    assert read("linked") == b"tmp data" and os.stat("linked").st_nlink == 1


def test_mkdir_rmdir():
    os.mkdir("d")
    assert os.stat(".").st_nlink == 3
    assert stat.S_ISDIR(os.stat("d").st_mode) and os.stat("d").st_nlink == 2
    expect_errno("EEXIST", os.mkdir, "d")
    write("d/f", b"x")
    expect_errno("ENOTEMPTY", os.rmdir, "d")
    expect_errno("ENOTDIR", os.rmdir, "d/f")
    expect_errno("EISDIR", os.unlink, "d")
    os.unlink("d/f")
    os.rmdir("d")
    assert os.stat(".").st_nlink == 2
    expect_errno("ENOENT", os.rmdir, "d")


def test_rename():
    write("a", b"A")
    write("b", b"B")
    os.rename("a", "b")
    assert read("b") == b"A" and not os.path.exists("a")
    write("a", b"A2")
    expect_errno("EEXIST", renameat2, "a", "b", RENAME_NOREPLACE)
    renameat2("a", "b", RENAME_EXCHANGE)
    assert read("a") == b"A" and read("b") == b"A2"
    expect_errno("ENOENT", renameat2, "a", "zz", RENAME_EXCHANGE)
    os.mkdir("d1")
    os.mkdir("d1/sub")
    expect_errno("EINVAL", os.rename, "d1", "d1/sub/x")
    os.mkdir("d2")
    write("d2/f", b"")
    expect_errno("ENOTEMPTY", os.rename, "d1", "d2")
    expect_errno("EISDIR", os.rename, "a", "d1")
    expect_errno("ENOTDIR", os.rename, "d1", "a")
    os.rename("d1/sub", "d2/sub")  # moves a directory: parents' nlink follow
    assert os.stat("d1").st_nlink == 2 and os.stat("d2").st_nlink == 3
    assert os.stat("d2/sub/..").st_ino == os.stat("d2").st_ino
    os.mkdir("empty")
    os.rename("d1", "empty")  # over an empty directory
    assert not os.path.exists("d1") and os.path.isdir("empty")
    os.rename("b", "b")  # same name: no-op
    assert read("b") == b"A2"


def test_link_unlink():
    write("f", b"data")
    os.link("f", "g")
    assert os.stat("f").st_nlink == 2 and os.stat("f").st_ino == os.stat("g").st_ino
    os.unlink("f")
    assert read("g") == b"data" and os.stat("g").st_nlink == 1
    os.mkdir("d")
    expect_errno("EPERM", os.link, "d", "d2")
    expect_errno("EEXIST", os.link, "g", "d")


def test_unlink_open_file():
    data = pattern(7, 3 << 20)
    write("big", data)
    free_before = gtest.statfs_free()
    fd = os.open("big", os.O_RDONLY)
    os.unlink("big")
    assert os.pread(fd, len(data), 0) == data
    # still allocated while open (the orphan record may take a metadata block)
    free_open = gtest.statfs_free()
    assert free_before - 2 <= free_open <= free_before, (free_before, free_open)
    os.close(fd)
    free_closed = gtest.statfs_free()
    assert free_closed >= free_before + (3 << 20) // 4096, (free_before, free_closed)


def test_symlink():
    os.symlink("target/with/path", "l")
    assert os.readlink("l") == "target/with/path"
    assert stat.S_ISLNK(os.lstat("l").st_mode) and os.lstat("l").st_size == len("target/with/path")
    long = "x" * 4000
    os.symlink(long, "long")
    assert os.readlink("long") == long
    write("t", b"via link")
    os.symlink("t", "lt")
    assert read("lt") == b"via link"
    gtest.drop_caches()
    assert os.readlink("long") == long


def test_readdir_many():
    names = {f"entry-{i:05d}-{'y' * (i % 50)}" for i in range(3000)}
    for n in names:
        os.close(os.open(n, os.O_CREAT | os.O_WRONLY, 0o644))
    got = os.listdir(".")
    assert len(got) == len(names) and set(got) == names
    for n in list(names)[:1000]:
        os.unlink(n)
    gtest.drop_caches()
    assert set(os.listdir(".")) == set(list(names)[1000:])


class Dirent(ctypes.Structure):
    _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64), ("d_reclen", ctypes.c_uint16),
                ("d_type", ctypes.c_uint8), ("d_name", ctypes.c_char * 256)]


def test_telldir_seekdir():
    for i in range(500):
        os.close(os.open(f"f{i}", os.O_CREAT | os.O_WRONLY))
    libc.opendir.restype = ctypes.c_void_p
    libc.readdir.restype = ctypes.POINTER(Dirent)
    libc.readdir.argtypes = [ctypes.c_void_p]
    libc.telldir.argtypes = [ctypes.c_void_p]
    libc.telldir.restype = ctypes.c_long
    libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
    libc.closedir.argtypes = [ctypes.c_void_p]
    d = libc.opendir(b".")
    seen = []
    cookies = []
    while True:
        pos = libc.telldir(d)
        e = libc.readdir(d)
        if not e:
            break
        cookies.append(pos)
        seen.append(e.contents.d_name)
    assert len(seen) == 502
    # deleting other entries must not move the cookies of the remaining ones
    for i in range(0, 500, 3):
        os.unlink(f"f{i}")
    for k in (400, 250, 3):
        name = seen[k]
        if name in (b".", b"..") or not os.path.exists(name.decode()):
            continue
        libc.seekdir(d, cookies[k])
        e = libc.readdir(d)
        assert e and e.contents.d_name == name, (k, name)
    libc.closedir(d)


def test_special_files():
    os.mkfifo("fifo", 0o600)
    assert stat.S_ISFIFO(os.stat("fifo").st_mode)
    os.mknod("chr", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    st = os.stat("chr")
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    os.mknod("blk", stat.S_IFBLK | 0o600, os.makedev(259, 70000 & 0xFFFFF))
    st = os.stat("blk")
    assert os.major(st.st_rdev) == 259 and os.minor(st.st_rdev) == 70000 & 0xFFFFF
    gtest.remount()
    st = os.stat("chr")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    with open("chr", "rb") as f:  # /dev/null semantics through our inode
        assert f.read() == b""


def test_attributes():
    write("f", b"x")
    os.chmod("f", 0o4751)
    assert stat.S_IMODE(os.stat("f").st_mode) == 0o4751
    os.chown("f", 1234, 5678)  # chown of an executable clears set-uid, root or not
    st = os.stat("f")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 5678, 0o751), st
    os.chmod("f", 0o4751)
    os.utime("f", ns=(1_000_000_123, 2_000_000_456))
    gtest.remount()
    st = os.stat("f")
    assert (st.st_atime_ns, st.st_mtime_ns) == (1_000_000_123, 2_000_000_456), (st.st_atime_ns, st.st_mtime_ns)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 5678, 0o4751), st
    btime = subprocess.run(["stat", "-c", "%W", "f"], capture_output=True, text=True).stdout.strip()
    assert btime not in ("0", "-", ""), btime
    out = subprocess.run(["xfs_io", "-c", "statx -r", "f"], capture_output=True, text=True).stdout
    attrs = [l for l in out.splitlines() if l.startswith("stat.attributes = ")]
    assert attrs and int(attrs[0].split("=")[1], 16) & 0x00200000, out  # STATX_ATTR_DAX


def lsattr_x(path):
    """FS_XFLAG_DAX of path, by xfs_io's FS_IOC_FSGETXATTR."""
    r = subprocess.run(["xfs_io", "-c", "lsattr -v", path], capture_output=True, text=True)
    assert r.returncode == 0 and "Inappropriate" not in r.stderr, (path, r.stdout, r.stderr)
    return "dax" in r.stdout.split("]")[0]


def test_dax_xflag_on_directories_is_inherited():
    os.makedirs("a/b")
    r = subprocess.run(["xfs_io", "-c", "chattr +x", "a"], capture_output=True, text=True)
    assert r.returncode == 0 and not r.stderr, r.stderr
    os.makedirs("a/c/d")
    write("a/f", b"x")
    write("a/c/d/g", b"y")
    os.symlink("f", "a/l")
    want = {"a": True, "a/b": False, "a/c": True, "a/c/d": True, "a/f": True, "a/c/d/g": True}
    got = {p: lsattr_x(p) for p in want}
    assert got == want, got
    gtest.remount()
    assert {p: lsattr_x(p) for p in want} == want
    subprocess.run(["xfs_io", "-c", "chattr -x", "a/c"], check=True)
    os.mkdir("a/c/e")
    assert not lsattr_x("a/c") and not lsattr_x("a/c/e") and lsattr_x("a/c/d")
    # immutable directories refuse new entries
    subprocess.run(["chattr", "+i", "a/b"], check=True)
    try:
        expect_errno("EPERM", os.mkdir, "a/b/x")
    finally:
        subprocess.run(["chattr", "-i", "a/b"], check=True)


def test_chattr_noatime_sync_nodump():
    """chattr +A +S +d (xfstests' _require_chattr ASai, generic/507): stored,
    listed by lsattr, kept across a remount; +A stops atime updates."""
    write("f", b"data")
    subprocess.run(["chattr", "+A", "+S", "+d", "f"], check=True)
    out = subprocess.run(["lsattr", "f"], capture_output=True, text=True, check=True).stdout
    assert all(c in out.split()[0] for c in "ASd"), out
    os.utime("f", (1000, 2000))
    read("f")
    assert os.stat("f").st_atime == 1000
    gtest.remount()
    out = subprocess.run(["lsattr", "f"], capture_output=True, text=True, check=True).stdout
    assert all(c in out.split()[0] for c in "ASd"), out
    subprocess.run(["chattr", "-A", "-S", "-d", "f"], check=True)
    out = subprocess.run(["lsattr", "f"], capture_output=True, text=True, check=True).stdout
    assert not any(c in out.split()[0] for c in "ASd"), out
    read("f")
    assert os.stat("f").st_atime != 1000


def statx_attributes(path):
    """(stx_attributes, stx_attributes_mask) by xfs_io's statx -r (the
    file opened read-only: an immutable or append-only file refuses a
    writer)."""
    out = subprocess.run(["xfs_io", "-r", "-c", "statx -r", path], capture_output=True, text=True).stdout
    get = lambda k: int([l for l in out.splitlines() if l.startswith(f"stat.{k} = ")][0].split("=")[1], 16)  # noqa: E731
    return get("attributes"), get("attributes_mask")


def test_statx_reports_inode_flags():
    """statx's stx_attributes carries immutable, append and nodump, each
    marked supported in stx_attributes_mask (generic/424), and follows
    chattr both ways."""
    IMMUTABLE, APPEND, NODUMP, DAX = 0x10, 0x20, 0x40, 0x00200000
    write("f", b"x")
    a, mask = statx_attributes("f")
    assert mask & (IMMUTABLE | APPEND | NODUMP | DAX) == IMMUTABLE | APPEND | NODUMP | DAX, hex(mask)
    assert a & (IMMUTABLE | APPEND | NODUMP) == 0, hex(a)
    for flag, bit in (("i", IMMUTABLE), ("a", APPEND), ("d", NODUMP)):
        subprocess.run(["chattr", f"+{flag}", "f"], check=True)
        try:
            a, _ = statx_attributes("f")
            assert a & (IMMUTABLE | APPEND | NODUMP) == bit, (flag, hex(a))
            gtest.remount()
            a, _ = statx_attributes("f")
            assert a & (IMMUTABLE | APPEND | NODUMP) == bit, (flag, "after a remount", hex(a))
        finally:
            subprocess.run(["chattr", f"-{flag}", "f"], check=True)
        assert statx_attributes("f")[0] & (IMMUTABLE | APPEND | NODUMP) == 0


def test_statfs_counts():
    st0 = os.statvfs(".")
    write("f", pattern(1, 1 << 20))
    st1 = os.statvfs(".")
    assert st0.f_bfree - st1.f_bfree >= 256, (st0.f_bfree, st1.f_bfree)
    os.unlink("f")
    st2 = os.statvfs(".")
    assert st2.f_bfree == st0.f_bfree, (st0.f_bfree, st2.f_bfree)


if __name__ == "__main__":
    gtest.main(globals())
