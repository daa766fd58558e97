#!/usr/bin/env python3
"""Files up to 2^63 - 1 bytes (format version 3; xfstests generic/303, 304):
the last byte written and read back, EINVAL one byte further, SEEK_DATA and
FIEMAP at the top, reflink and dedupe between high and low offsets, and
whole-file clone, unshare and punch of a sparse 8 EiB file finishing in
steps that skip its holes. A version 2 filesystem is raised to version 3
by its first file past 16 TiB."""
import os
import sys

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, clone, clone_range, dedupe, expect_errno
from fsutil import errname, fallocate, fiemap, pattern

B = 4096
TOP = (1 << 63) - 1          # s_maxbytes, XFS's
LAST = TOP - TOP % B          # offset of the last block
FALLOC_FL_UNSHARE_RANGE = 0x40
SEEK_DATA = 3


def big_file(name):
    """A sparse file of TOP bytes: block 0 and the last block written."""
    fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    os.pwrite(fd, b"first", 0)
    os.pwrite(fd, b"end", TOP - 3)
    return fd


def test_the_last_byte():
    fd = big_file("f")
    assert os.fstat(fd).st_size == TOP
    assert os.pread(fd, 3, TOP - 3) == b"end"
    # offset + count past 2^63 - 1 is EINVAL in the VFS (rw_verify_area),
    # before any filesystem sees it; the last byte itself can be written
    expect_errno("EINVAL", os.pwrite, fd, b"x", TOP)
    assert os.pwrite(fd, b"D", TOP - 1) == 1 and os.fstat(fd).st_size == TOP
    assert os.pread(fd, 3, TOP - 3) == b"enD"
    assert os.lseek(fd, 1 << 20, SEEK_DATA) == LAST
    ext = fiemap(fd)
    assert [e[0] for e in ext] == [0, LAST], ext
    assert os.fstat(fd).st_blocks == 16, os.fstat(fd).st_blocks
    gtest.remount()
    fd = os.open("f", os.O_RDWR)
    assert os.fstat(fd).st_size == TOP and os.pread(fd, 3, TOP - 3) == b"enD"
    os.ftruncate(fd, B)
    assert fiemap(fd)[-1][0] == 0 and os.fstat(fd).st_blocks == 8
    os.close(fd)


def test_reflink_and_dedupe_at_the_top():
    fd = big_file("src")
    low = os.open("low", os.O_RDWR | os.O_CREAT, 0o644)
    # high to low: the last, partial block (the range reaches EOF)
    clone_range(fd, LAST, 0, low, 0)
    assert os.fstat(low).st_size == B - 1
    assert os.pread(low, 3, B - 4) == b"end"
    # low to high: one whole block just under the last one
    data = pattern(1, B)
    os.pwrite(low, data, B)
    clone_range(low, B, B, fd, LAST - B)
    assert os.pread(fd, B, LAST - B) == data
    assert os.fstat(fd).st_size == TOP
    # past the largest file: EINVAL (remap checks) or EFBIG, nothing changed
    e = errname(clone_range, low, B, B, fd, LAST)
    assert e in ("EINVAL", "EFBIG"), e
    assert os.fstat(fd).st_size == TOP and os.pread(fd, 3, TOP - 3) == b"end"
    # dedupe of equal blocks at both ends
    assert dedupe(low, B, B, fd, LAST - B) == (0, B)
    assert os.pread(fd, B, LAST - B) == data
    os.close(low)
    os.close(fd)


def test_whole_file_operations_skip_the_holes():
    """2^51 blocks of address space, two mapped: each is a few steps, where
    stepping 8 MiB at a time would take 2^40 of them."""
    fd = big_file("sparse")
    dst = os.open("copy", os.O_RDWR | os.O_CREAT, 0o644)
    clone(fd, dst)
    assert os.fstat(dst).st_size == TOP and os.pread(dst, 3, TOP - 3) == b"end"
    assert os.pread(dst, 5, 0) == b"first"
    free0 = gtest.statfs_free()
    # UNSHARE also allocates the range's holes (as on XFS): the shared
    # blocks are copied, then the device fills and the call says ENOSPC
    expect_errno("ENOSPC", fallocate, dst, FALLOC_FL_UNSHARE_RANGE | FALLOC_FL_KEEP_SIZE, 0, TOP)
    assert not [e for e in fiemap(dst) if e[3] & 0x2000], fiemap(dst)[:4]  # none SHARED
    assert os.pread(dst, 3, TOP - 3) == b"end" and os.pread(dst, 5, 0) == b"first"
    # [0, TOP) is the whole file, but its last block reaches one byte past
    # EOF, so it is not wholly in the range: zeroed in place, every other
    # block freed
    fallocate(dst, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, TOP)
    assert [e[0] for e in fiemap(dst)] == [LAST] and os.fstat(dst).st_blocks == 8, fiemap(dst)[:4]
    assert os.pread(dst, B - 1, LAST) == bytes(B - 1)
    assert gtest.statfs_free() == free0 - 1, (free0, gtest.statfs_free())
    # the source kept its blocks
    assert os.pread(fd, 3, TOP - 3) == b"end"
    os.close(dst)
    os.close(fd)
    os.unlink("sparse")


def test_version_2_is_raised_by_the_first_file_past_16_tib():
    d, dev = gtest.MNT, gtest.DEV
    assert gtest.sh(f"ferrofs-db {dev} get version").strip() == "3"
    cwd = os.getcwd()
    os.chdir("/")
    try:
        gtest.umount()
        gtest.sh(f"ferrofs-db {dev} set version 2")
        gtest.mount()
        fd = os.open(f"{d}/at16", os.O_RDWR | os.O_CREAT, 0o644)
        os.ftruncate(fd, 1 << 44)
        os.close(fd)
        gtest.umount()
        assert gtest.sh(f"ferrofs-db {dev} get version").strip() == "2", "16 TiB fits version 2"
        gtest.mount()
        fd = os.open(f"{d}/past16", os.O_RDWR | os.O_CREAT, 0o644)
        os.pwrite(fd, b"p", 1 << 44)
        os.close(fd)
        gtest.umount()
        assert gtest.sh(f"ferrofs-db {dev} get version").strip() == "3"
        gtest.mount()
        with open(f"{d}/past16", "rb") as f:
            f.seek(1 << 44)
            assert f.read() == b"p"
    finally:
        if not os.path.ismount(d):
            gtest.mount()
        os.chdir(cwd)


if __name__ == "__main__":
    gtest.main(globals())
