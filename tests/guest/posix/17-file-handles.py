#!/usr/bin/env python3
"""File handles (name_to_handle_at/open_by_handle_at, what NFS export and
fanotify use): files and directories open by handle with a cold cache and
after a remount, directories reconnect to their path, and a handle of a
deleted file or with a forged generation or inode number is ESTALE."""
import ctypes
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import _libc, expect_errno, mkfile, pattern, read_all

AT_FDCWD = -100
FILEID_INO64_GEN = 0x81
MAX_HANDLE_SZ = 128


def name_to_handle(path):
    """(handle_type, handle bytes, mount id) of path."""
    buf = ctypes.create_string_buffer(8 + MAX_HANDLE_SZ)
    struct.pack_into("I", buf, 0, MAX_HANDLE_SZ)
    mnt = ctypes.c_int()
    if _libc.name_to_handle_at(AT_FDCWD, path.encode(), buf, ctypes.byref(mnt), 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)
    n, ty = struct.unpack_from("Ii", buf.raw, 0)
    return ty, buf.raw[8:8 + n], mnt.value


def open_by_handle(ty, fh, flags=os.O_RDONLY):
    buf = ctypes.create_string_buffer(struct.pack("Ii", len(fh), ty) + fh)
    mfd = os.open(gtest.MNT, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fd = _libc.open_by_handle_at(mfd, buf, flags)
        if fd < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return fd
    finally:
        os.close(mfd)


def fh_words(fh):
    """(ino, generation) of a FILEID_INO64_GEN handle."""
    lo, hi, gen = struct.unpack("III", fh)
    return lo | hi << 32, gen


def test_handles_open_files_and_dirs():
    data = pattern(3, 20000)
    os.close(mkfile("f", data))
    os.makedirs("a/b/c")
    os.close(mkfile("a/b/c/leaf", b"leaf"))
    here = os.getcwd()
    ty, fh, mnt = name_to_handle("f")
    assert ty == FILEID_INO64_GEN and len(fh) == 12, (ty, fh)
    assert fh_words(fh)[0] == os.stat("f").st_ino
    dty, dfh, _ = name_to_handle("a/b/c")
    assert dty == FILEID_INO64_GEN and fh_words(dfh)[0] == os.stat("a/b/c").st_ino
    for when in ("warm", "cold", "remounted"):
        if when == "cold":
            gtest.drop_caches()
        if when == "remounted":
            gtest.remount()
            assert name_to_handle("f")[:2] == (ty, fh), "handles are stable across a mount"
        fd = open_by_handle(ty, fh)
        try:
            assert os.fstat(fd).st_ino == os.stat("f").st_ino and read_all(fd) == data, when
        finally:
            os.close(fd)
        gtest.drop_caches()
        # a directory opened from a cold cache reconnects to its real path
        dfd = open_by_handle(dty, dfh, os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert os.listdir(dfd) == ["leaf"], when
            assert os.readlink(f"/proc/self/fd/{dfd}") == os.path.join(here, "a/b/c"), when
        finally:
            os.close(dfd)
    # the handle is writable through too
    fd = open_by_handle(ty, fh, os.O_RDWR)
    os.pwrite(fd, b"HANDLE", 100)
    os.close(fd)
    assert read_all(os.open("f", os.O_RDONLY))[100:106] == b"HANDLE"


def test_stale_handles():
    os.close(mkfile("gone", b"x"))
    os.close(mkfile("kept", b"y"))
    ty, fh, _ = name_to_handle("gone")
    kty, kfh, _ = name_to_handle("kept")
    ino, gen = fh_words(kfh)
    os.unlink("gone")
    gtest.drop_caches()
    expect_errno("ESTALE", open_by_handle, ty, fh)
    gtest.remount()
    expect_errno("ESTALE", open_by_handle, ty, fh)
    # a live inode number with the wrong generation, a number never used
    expect_errno("ESTALE", open_by_handle, kty, struct.pack("III", ino & 0xFFFFFFFF, ino >> 32, gen ^ 1))
    expect_errno("ESTALE", open_by_handle, kty, struct.pack("III", 0x7FFFFFF0, 0, gen))
    # a handle type and a length that are not ours
    expect_errno("ESTALE", open_by_handle, 0x1, kfh)
    expect_errno("ESTALE", open_by_handle, kty, kfh[:8])
    # the right one still works
    fd = open_by_handle(kty, kfh)
    assert read_all(fd) == b"y"
    os.close(fd)
    # generations differ between inodes made one after the other
    os.close(mkfile("n1", b""))
    os.close(mkfile("n2", b""))
    g1, g2 = fh_words(name_to_handle("n1")[1])[1], fh_words(name_to_handle("n2")[1])[1]
    assert g1 != g2, (g1, g2)


if __name__ == "__main__":
    gtest.main(globals())
