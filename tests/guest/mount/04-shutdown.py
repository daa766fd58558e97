#!/usr/bin/env python3
"""FS_IOC_SHUTDOWN: root only, flags checked, every later operation EIO,
umount and remount work, and what was written before the call is there
after the remount; fsck clean."""
import fcntl
import mmap
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE
from fsutil import expect_errno, fallocate, pattern

FS_IOC_SHUTDOWN = 0x8004587D
DEFAULT, LOGFLUSH, NOLOGFLUSH = 0, 1, 2


def shutdown(path, flags):
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, FS_IOC_SHUTDOWN, struct.pack("I", flags))
    finally:
        os.close(fd)


def as_nobody(fn):
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(65534)
            os.setuid(65534)
            fn()
            os._exit(0)
        except AssertionError as e:
            print(e)
            os._exit(1)
        except BaseException as e:  # noqa: BLE001 - report anything in the child
            print(repr(e))
            os._exit(2)
    _, st = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(st) == 0


def dmesg():
    return subprocess.run(["dmesg"], capture_output=True, text=True).stdout


def one(flags):
    d = gtest.MNT
    data = pattern(flags + 7, 3 * 4096 + 100)
    with open(f"{d}/written", "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    # stores through a shared mapping, never msync'd
    fd = os.open(f"{d}/mapped", os.O_RDWR | os.O_CREAT, 0o644)
    os.ftruncate(fd, 8192)
    m = mmap.mmap(fd, 8192)
    m[:5] = b"store"
    keep = os.open(f"{d}/written", os.O_RDWR)
    # unlinked files still open at the shutdown: nothing can free them
    # then; the next mount does (they are on the orphan list), and the
    # umount says so in one line, not one per inode
    free0 = os.statvfs(d).f_bfree
    gone = []
    for i in range(3):
        g = os.open(f"{d}/gone{i}", os.O_RDWR | os.O_CREAT, 0o644)
        os.pwrite(g, pattern(i, 1 << 20), 0)
        os.fsync(g)
        os.unlink(f"{d}/gone{i}")
        gone.append(g)
    expect_errno("EINVAL", shutdown, d, 3)
    as_nobody(lambda: expect_errno("EPERM", shutdown, d, flags))
    log0 = at_shutdown = dmesg()
    shutdown(d, flags)
    assert "shutting down: FS_IOC_SHUTDOWN" in dmesg()[len(log0):], dmesg()[len(log0):]
    shutdown(d, flags)            # a second call is harmless
    expect_errno("EIO", os.pread, keep, 10, 0)
    expect_errno("EIO", os.pwrite, keep, b"x", 0)
    expect_errno("EIO", os.open, f"{d}/new", os.O_CREAT | os.O_WRONLY, 0o644)
    expect_errno("EIO", os.mkdir, f"{d}/newdir")
    expect_errno("EIO", os.unlink, f"{d}/written")
    expect_errno("EIO", os.statvfs, d)
    m.close()
    os.close(fd)
    os.close(keep)
    for g in gone:
        os.close(g)
    cwd = os.getcwd()
    os.chdir("/")
    log0 = dmesg()
    gtest.umount()
    log = dmesg()[len(log0):]
    assert "3 unlinked inodes not freed after the shutdown" in log, log
    assert "freeing inode" not in dmesg()[len(at_shutdown):], log
    # the superblock says the next mount recovers (xfstests' log state
    # probe, generic/052, reads this); after that mount's umount, clean
    assert gtest.sh(f"ferrofs-db {gtest.DEV} get state").strip() == "2"
    gtest.mount()
    os.chdir(cwd)
    # 768 blocks came back (a little metadata may differ)
    assert os.statvfs(d).f_bfree >= free0 - 16, (free0, os.statvfs(d).f_bfree)
    with open(f"{d}/written", "rb") as f:
        assert f.read() == data
    with open(f"{d}/mapped", "rb") as f:
        got = f.read(5)
    if flags == DEFAULT:
        assert got == b"store", got
    # the filesystem works again, and is consistent
    with open(f"{d}/after", "wb") as f:
        f.write(b"after")
    rc, out = gtest.fsck_now()
    assert rc == 0, out
    assert gtest.sh(f"ferrofs-db {gtest.DEV} get state").strip() == "2", "mounted, so dirty"
    os.chdir("/")
    gtest.umount()
    assert gtest.sh(f"ferrofs-db {gtest.DEV} get state").strip() == "1", "a clean umount"
    gtest.mount()
    os.chdir(cwd)
    for n in ("written", "mapped", "after"):
        os.unlink(f"{d}/{n}")


def test_shutdown_default():
    one(DEFAULT)


def test_shutdown_logflush():
    one(LOGFLUSH)


def test_shutdown_nologflush():
    one(NOLOGFLUSH)


def head(dev):
    """The first MiB of the device as the media holds it (the block
    device's page cache dropped first: DAX stores never go through it)."""
    subprocess.run(["blockdev", "--flushbufs", dev], check=True)
    with open(dev, "rb") as f:
        return f.read(1 << 20)


def test_read_only_device_after_shutdown():
    """generic/050's sequence: a filesystem that needs recovery is refused
    on a write-protected device (DAX stores would bypass the protection),
    -o ro,norecovery mounts it there without writing a byte, -o norecovery
    alone is EINVAL, and after blockdev --setrw a mount recovers."""
    d, dev = gtest.MNT, gtest.DEV
    with open(f"{d}/kept", "wb") as f:
        f.write(b"kept")
        os.fsync(f.fileno())
    shutdown(d, LOGFLUSH)
    cwd = os.getcwd()
    os.chdir("/")
    try:
        gtest.umount()
        subprocess.run(["blockdev", "--setro", dev], check=True)
        before = head(dev)
        log0 = dmesg()
        r = subprocess.run(["mount", "-t", "ferrofs", "-o", "dax", dev, d], capture_output=True, text=True)
        assert r.returncode != 0, "mounted a filesystem needing recovery on a read-only device"
        assert "recovery needed" in dmesg()[len(log0):], dmesg()[len(log0):]
        gtest.sh(f"mount -t ferrofs -o ro,norecovery {dev} {d}")
        with open(f"{d}/kept", "rb") as f:
            assert f.read() == b"kept"
        expect_errno("EROFS", os.mkdir, f"{d}/x")
        gtest.umount()
        assert head(dev) == before, "the read-only device was written"
        subprocess.run(["blockdev", "--setrw", dev], check=True)
        # norecovery without ro is refused (on a read-only device mount(8)
        # retries read-only by itself)
        r = subprocess.run(["mount", "-t", "ferrofs", "-o", "norecovery", dev, d], capture_output=True, text=True)
        assert r.returncode != 0 and "needs a read-only mount" in dmesg(), r
        gtest.mount()
    finally:
        subprocess.run(["blockdev", "--setrw", dev])
        os.chdir(cwd)
    assert "norecovery" not in open("/proc/mounts").read()
    with open(f"{d}/kept", "rb") as f:
        assert f.read() == b"kept"
    # cleanly unmounted, a read-only device mounts (read-only) as it is
    os.chdir("/")
    try:
        gtest.umount()
        subprocess.run(["blockdev", "--setro", dev], check=True)
        r = subprocess.run(["mount", "-t", "ferrofs", "-o", "dax", dev, d], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert " ro," in [l for l in open("/proc/mounts") if d in l][0]
        gtest.umount()
    finally:
        subprocess.run(["blockdev", "--setrw", dev])
        gtest.mount()
        os.chdir(cwd)
    os.unlink(f"{d}/kept")


def fill_device(dev, byte):
    """Every byte of the device set to `byte` (through the block device,
    flushed to the media) so that stale data shows if it is ever exposed."""
    chunk = bytes([byte]) * (1 << 20)
    fd = os.open(dev, os.O_WRONLY)
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        os.lseek(fd, 0, os.SEEK_SET)
        for _ in range(size >> 20):
            os.write(fd, chunk)
        os.fsync(fd)
    finally:
        os.close(fd)
    subprocess.run(["blockdev", "--flushbufs", dev], check=True)


def test_no_stale_data_after_shutdown_following_fallocate():
    """generic/042 on pmem (xfstests runs it on a loop device, which has no
    DAX, so it is expunged for ferrofs): on a device filled with 0xCD, a
    file of 64 KiB of 0xAB, fsync'd, then falloc -k, fpunch or fzero -k of
    60k-64k and a shutdown (godown -f: LOGFLUSH). After the remount no 0xCD
    byte is in the file: the range holds 0xAB (falloc) or zeroes."""
    d, dev = gtest.MNT, gtest.DEV
    cwd = os.getcwd()
    os.chdir("/")
    try:
        for name, mode in (("falloc -k", FALLOC_FL_KEEP_SIZE),
                           ("fpunch", FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE),
                           ("fzero -k", FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE)):
            gtest.umount()
            fill_device(dev, 0xCD)
            gtest.mkfs_mount()
            fd = os.open(f"{d}/file", os.O_RDWR | os.O_CREAT, 0o644)
            os.pwrite(fd, b"\xab" * 65536, 0)
            os.fsync(fd)
            fallocate(fd, mode, 60 << 10, 4 << 10)
            shutdown(d, LOGFLUSH)
            os.close(fd)
            gtest.umount()
            gtest.mount()
            with open(f"{d}/file", "rb") as f:
                got = f.read()
            tail = b"\xab" * 4096 if mode == FALLOC_FL_KEEP_SIZE else bytes(4096)
            assert b"\xcd" not in got, f"{name}: stale data at byte {got.find(0xCD)}"
            assert got == b"\xab" * (60 << 10) + tail, f"{name}: {len(got)} bytes, {got[60 << 10:(60 << 10) + 8]!r}"
            rc, out = gtest.fsck_now()
            assert rc == 0, out
    finally:
        if not os.path.ismount(d):
            gtest.mount()
        os.makedirs(cwd, exist_ok=True)
        os.chdir(cwd)


if __name__ == "__main__":
    gtest.main(globals())
