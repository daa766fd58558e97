#!/usr/bin/env python3
"""Remounting between read-only and read-write (xfstests generic/417's
sequence, checked byte for byte): a read-only mount of a filesystem that
crashed with unlinked open files writes nothing; `mount -o remount,rw`
reaps those orphans and makes it writable; `mount -o remount,ro` leaves
what a clean unmount leaves and refuses writes with EROFS; after
`-o ro,norecovery` remount read-write is EINVAL with a kernel log line
naming the device and the cause."""
import ctypes
import ctypes.util
import errno
import fcntl
import hashlib
import os
import re
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import expect_errno, pattern

FS_IOC_SHUTDOWN = 0x8004587D
LOGFLUSH = 1
MS_RDONLY, MS_REMOUNT = 1, 32
SIZE_MIB = 64  # the test's filesystem: small, so hashing all of it is quick
ORPHAN_BYTES = 1 << 20

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def remount_errno(flags):
    """mount(2) with MS_REMOUNT | flags on the test mount: 'OK' or the errno name."""
    r = _libc.mount(gtest.DEV.encode(), gtest.MNT.encode(), b"ferrofs", MS_REMOUNT | flags, b"")
    return "OK" if r == 0 else errno.errorcode[ctypes.get_errno()]


def dmesg():
    return subprocess.run(["dmesg"], capture_output=True, text=True).stdout


def media():
    """SHA-256 of the filesystem's bytes as the media holds them (the block
    device's page cache dropped first: DAX stores never go through it)."""
    subprocess.run(["blockdev", "--flushbufs", gtest.DEV], check=True)
    h = hashlib.sha256()
    with open(gtest.DEV, "rb") as f:
        for _ in range(SIZE_MIB):
            h.update(f.read(1 << 20))
    return h.hexdigest()


def sb():
    """The on-media superblock fields, from ferrofs-db print."""
    subprocess.run(["blockdev", "--flushbufs", gtest.DEV], check=True)
    out = gtest.sh(f"ferrofs-db {gtest.DEV} print")
    return {k: int(v) for k, v in re.findall(r"^\s*(\w+): (\d+),$", out, re.M)}


def mode():
    line = [l for l in open("/proc/mounts") if f" {gtest.MNT} " in l][0]
    return line.split()[3].split(",")


def used_inodes():
    st = os.statvfs(gtest.MNT)
    return st.f_files - st.f_ffree


def crash_with_orphans():
    """A fresh filesystem with a fsync'd file, then FS_IOC_SHUTDOWN while
    an unlinked file and an O_TMPFILE are open (the crash), and umount:
    the media is dirty and holds two orphans."""
    d = gtest.MNT
    gtest.sh(f"mkfs.ferrofs -f -q -s {SIZE_MIB}m {gtest.DEV}")
    gtest.mount()
    with open(f"{d}/kept", "wb") as f:
        f.write(pattern(1, 10000))
        os.fsync(f.fileno())
    fds = []
    fd = os.open(f"{d}/orphan", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, pattern(2, ORPHAN_BYTES))
    os.fsync(fd)
    os.unlink(f"{d}/orphan")
    fds.append(fd)
    fd = os.open(d, os.O_TMPFILE | os.O_RDWR, 0o600)
    os.write(fd, pattern(3, 3 * 4096))
    os.fsync(fd)
    fds.append(fd)
    used = used_inodes()  # root, kept and the two orphans
    free = os.statvfs(d).f_bfree
    fd = os.open(d, os.O_RDONLY)
    fcntl.ioctl(fd, FS_IOC_SHUTDOWN, struct.pack("I", LOGFLUSH))
    os.close(fd)
    for fd in fds:
        os.close(fd)
    gtest.umount()
    return used, free


def test_ro_then_rw_then_ro():
    d = gtest.MNT
    os.chdir("/")
    gtest.umount()
    used, free = crash_with_orphans()
    sb0 = sb()
    assert sb0["state"] == 2, sb0  # dirty: not unmounted cleanly
    before = media()

    # read-only: nothing reaped, nothing written
    gtest.sh(f"mount -t ferrofs -o ro {gtest.DEV} {d}")
    assert "ro" in mode(), mode()
    with open(f"{d}/kept", "rb") as f:
        assert f.read() == pattern(1, 10000)
    assert used_inodes() == used, (used_inodes(), used)
    assert os.statvfs(d).f_bfree == free
    expect_errno("EROFS", os.open, f"{d}/new", os.O_CREAT | os.O_WRONLY, 0o644)
    assert media() == before, "the read-only mount wrote to the media"

    # read-write: the orphans are reaped, the superblock says mounted
    log0 = dmesg()
    gtest.sh(f"mount -o remount,rw {d}")
    assert "rw" in mode(), mode()
    log = dmesg()[len(log0):]
    assert re.search(r"ferrofs \(pmem\d+\): remounted read-write, 2 orphan inodes reaped", log), log
    assert used_inodes() == used - 2, (used_inodes(), used)
    assert os.statvfs(d).f_bfree >= free + ORPHAN_BYTES // 4096 + 3, (os.statvfs(d).f_bfree, free)
    sb1 = sb()
    assert sb1["state"] == 2 and sb1["mount_count"] == sb0["mount_count"] + 1, (sb0, sb1)
    data = pattern(4, 50000)
    with open(f"{d}/after", "wb") as f:
        f.write(data)
    with open(f"{d}/after", "rb") as f:
        assert f.read() == data
    os.mkdir(f"{d}/newdir")

    # an unlinked file still open keeps it writable: the VFS says EBUSY
    fd = os.open(f"{d}/busy", os.O_RDWR | os.O_CREAT, 0o644)
    os.unlink(f"{d}/busy")
    assert remount_errno(MS_RDONLY) == "EBUSY"
    os.close(fd)

    # read-only again: clean on media at once, writes refused
    log0 = dmesg()
    gtest.sh(f"mount -o remount,ro {d}")
    assert "ro" in mode(), mode()
    assert "remounted read-only, clean on media" in dmesg()[len(log0):]
    sb2 = sb()
    assert sb2["state"] == 1, sb2
    expect_errno("EROFS", os.open, f"{d}/new", os.O_CREAT | os.O_WRONLY, 0o644)
    expect_errno("EROFS", os.open, f"{d}/after", os.O_WRONLY)
    expect_errno("EROFS", os.mkdir, f"{d}/d2")
    expect_errno("EROFS", os.unlink, f"{d}/after")
    expect_errno("EROFS", os.truncate, f"{d}/after", 0)
    with open(f"{d}/after", "rb") as f:
        assert f.read() == data
    clean = media()
    gtest.umount()
    # the unmount of the read-only mount had nothing left to write
    assert media() == clean, "remount ro did not leave what a clean unmount leaves"
    r = subprocess.run(["fsck.ferrofs", "-n", gtest.DEV], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

    # and all of it is there on the next mount
    gtest.mount()
    with open(f"{d}/after", "rb") as f:
        assert f.read() == data
    assert os.path.isdir(f"{d}/newdir")
    # the orphans went, "after" and "newdir" came ("busy" went on close)
    assert used_inodes() == used - 2 + 2


FS_IOC_GETFSLABEL, FS_IOC_SETFSLABEL, FSLABEL_MAX = 0x81009431, 0x41009432, 256


def get_label(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return fcntl.ioctl(fd, FS_IOC_GETFSLABEL, bytes(FSLABEL_MAX)).rstrip(b"\0")
    finally:
        os.close(fd)


def set_label(path, label, pad=True):
    fd = os.open(path, os.O_RDONLY)
    try:
        buf = label + bytes(FSLABEL_MAX - len(label)) if pad else label
        fcntl.ioctl(fd, FS_IOC_SETFSLABEL, buf)
    finally:
        os.close(fd)


def device_bytes(off, n):
    """n bytes of block 0 (the primary superblock) at off, read through the
    block device."""
    fd = os.open(gtest.DEV, os.O_RDONLY)
    try:
        return os.pread(fd, n, off)
    finally:
        os.close(fd)


def device_label():
    """The label in the primary superblock (bytes 72..104, NUL-padded)."""
    return device_bytes(72, 32).rstrip(b"\0")


def test_label_ioctls():
    """FS_IOC_GETFSLABEL/SETFSLABEL (xfs_io -c label): the label reaches
    the media and the block device at once and survives a remount; at most
    32 bytes; CAP_SYS_ADMIN only; not on a read-only mount."""
    m = gtest.MNT
    assert get_label(m) == b"", get_label(m)  # the harness's mkfs sets none
    assert device_label() == b""
    set_label(m, b"ferro-label")
    assert get_label(m) == b"ferro-label"
    assert device_label() == b"ferro-label", "readers of the device see it"
    gtest.remount()
    assert get_label(gtest.MNT) == b"ferro-label"
    set_label(m, b"L" * 32)
    assert get_label(m) == b"L" * 32
    expect_errno("EINVAL", set_label, m, b"L" * 33)
    expect_errno("EINVAL", set_label, m, b"x" * FSLABEL_MAX, pad=False)  # no NUL in the buffer
    assert get_label(m) == b"L" * 32, "a refused label changes nothing"
    pid = os.fork()
    if pid == 0:
        os.setresuid(4000, 4000, 4000)
        try:
            set_label(m, b"user")
            os._exit(1)
        except OSError as e:
            os._exit(0 if e.errno == errno.EPERM else 2)
    _, st = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(st) == 0, "a user may not set the label"
    os.chdir("/")
    gtest.sh(f"mount -o remount,ro {m}")
    try:
        expect_errno("EROFS", set_label, m, b"ro")
        assert get_label(m) == b"L" * 32
    finally:
        gtest.sh(f"mount -o remount,rw {m}")
    set_label(m, b"")
    assert get_label(m) == b"" and device_label() == b""


FS_IOC_GETFSUUID = 0x80111500  # _IOR(0x15, 0, struct fsuuid2 { __u8 len, uuid[16]; })


def get_uuid(path):
    """(length, uuid) from FS_IOC_GETFSUUID."""
    fd = os.open(path, os.O_RDONLY)
    try:
        out = fcntl.ioctl(fd, FS_IOC_GETFSUUID, bytes(17))
    finally:
        os.close(fd)
    return out[0], out[1:]


def test_uuid_ioctl():
    """FS_IOC_GETFSUUID: the VFS answers it from s_uuid, which ferrofs
    fills at mount from the superblock's uuid (bytes 56..72 of block 0,
    mkfs's random version-4 uuid); ENOTTY if a filesystem leaves it
    unset. duperemove, overlayfs and IMA key on it."""
    on_media = device_bytes(56, 16)
    assert on_media != bytes(16) and on_media[6] >> 4 == 4, on_media.hex()
    with open(os.path.join(gtest.MNT, "uuid-probe"), "wb") as f:
        f.write(b"x")
    for path in (gtest.MNT, os.path.join(gtest.MNT, "uuid-probe")):
        n, u = get_uuid(path)
        assert (n, u) == (16, on_media), (path, n, u.hex(), on_media.hex())
    gtest.remount()
    assert get_uuid(gtest.MNT) == (16, on_media)
    os.unlink(os.path.join(gtest.MNT, "uuid-probe"))


def test_norecovery_refuses_rw():
    d = gtest.MNT
    os.chdir("/")
    gtest.umount()
    used, _ = crash_with_orphans()
    before = media()
    gtest.sh(f"mount -t ferrofs -o ro,norecovery {gtest.DEV} {d}")
    assert "norecovery" in mode(), mode()
    log0 = dmesg()
    assert remount_errno(0) == "EINVAL"
    log = dmesg()[len(log0):]
    assert re.search(r"ferrofs \(pmem\d+\): cannot remount read-write: mounted with norecovery, so an interrupted transaction may still be in the journal", log), log
    # mount(8) too, as users and xfstests ask
    r = subprocess.run(["mount", "-o", "remount,rw", d], capture_output=True, text=True)
    assert r.returncode != 0, r
    assert "ro" in mode(), mode()
    expect_errno("EROFS", os.mkdir, f"{d}/x")
    assert used_inodes() == used
    gtest.umount()
    assert media() == before, "a norecovery mount or its refused remount wrote"
    # norecovery asked for on a remount to rw is refused as well
    gtest.sh(f"mount -t ferrofs -o ro {gtest.DEV} {d}")
    r = _libc.mount(gtest.DEV.encode(), d.encode(), b"ferrofs", MS_REMOUNT, b"norecovery")
    assert r != 0 and ctypes.get_errno() == errno.EINVAL
    assert "ro" in mode(), mode()
    gtest.umount()
    # a recovering mount reaps the orphans; the result is consistent
    gtest.mount()
    assert used_inodes() == used - 2
    r = subprocess.run(["fsck.ferrofs", "-n", gtest.DEV], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


if __name__ == "__main__":
    gtest.main(globals())
