#!/usr/bin/env python3
"""The per-PFN reverse map in debugfs lists exactly the (inode, page) owners
of mapped shared blocks through a scripted sequence, and is empty once the
files are gone."""
import fcntl
import mmap
import os
import sys

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import fiemap, pattern

B = 4096
FICLONE = 0x40049409


def rmap():
    dev = os.path.basename(gtest.DEV)
    with open(f"/sys/kernel/debug/ferrofs/{dev}/rmap") as f:
        lines = f.read().splitlines()
    header = lines[0]
    rows = {(int(l.split()[0]), int(l.split()[2]), int(l.split()[3])) for l in lines if not l.startswith("#")}
    return header, rows


def first_block(fd):
    return fiemap(fd)[0][1] // B


def test_rmap_tracks_owners():
    data = pattern(1, 4 * B)
    a = os.open("a", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(a, data)
    b = os.open("b", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.ioctl(b, FICLONE, a)
    ia, ib = os.fstat(a).st_ino, os.fstat(b).st_ino
    p0 = first_block(a)
    assert first_block(b) == p0
    _, rows = rmap()
    assert rows == set(), rows  # nothing mapped yet
    ma, mb = mmap.mmap(a, 4 * B), mmap.mmap(b, 4 * B)
    assert ma[:] == data and mb[:] == data  # read faults on shared blocks
    want = {(p0 + i, ino, i) for i in range(4) for ino in (ia, ib)}
    header, rows = rmap()
    assert rows == want, (rows ^ want)
    assert "shared pages 4 owners 8" in header, header
    mb[2 * B] = 0x55  # CoW of b's page 2: b no longer owns block p0+2
    want.discard((p0 + 2, ib, 2))
    got = rmap()[1]
    assert got == want, ("after CoW", p0, ia, ib, sorted(got), sorted(want))
    ma.close()
    os.ftruncate(a, B)  # a keeps only page 0
    want -= {(p0 + i, ia, i) for i in (1, 2, 3)}
    assert rmap()[1] == want, rmap()[1] ^ want
    mb.close()
    os.close(a)
    os.close(b)
    os.unlink("a")
    os.unlink("b")
    header, rows = rmap()
    assert rows == set() and "owners 0" in header, (header, rows)


def test_shift_keeps_sharing_and_rmap():
    """Collapse and insert range move a reflinked file's shared extents
    without copying them (FIEMAP: the same physical blocks, still SHARED,
    no space used), and the per-PFN rmap drops the (inode, index) owners
    whose index the shift changed; the next fault records the new one."""
    FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_INSERT_RANGE = 8, 32
    FIEMAP_EXTENT_SHARED = 0x2000
    data = pattern(7, 6 * B)
    a = os.open("sa", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(a, data)
    b = os.open("sb", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.ioctl(b, FICLONE, a)
    ia, ib = os.fstat(a).st_ino, os.fstat(b).st_ino
    p0 = first_block(a)
    ma, mb = mmap.mmap(a, 6 * B), mmap.mmap(b, 6 * B)
    assert ma[:] == data and mb[:] == data
    want = {(p0 + i, ino, i) for i in range(6) for ino in (ia, ib)}
    assert rmap()[1] == want
    free0 = gtest.statfs_free()
    import ctypes
    libc = ctypes.CDLL("libc.so.6", use_errno=True)

    def falloc(fd, mode, off, n):
        assert libc.fallocate(fd, mode, ctypes.c_long(off), ctypes.c_long(n)) == 0, os.strerror(ctypes.get_errno())

    mb.close()
    falloc(b, FALLOC_FL_COLLAPSE_RANGE, B, 2 * B)    # b: blocks 0, 3, 4, 5
    bdata = data[:B] + data[3 * B:]
    assert os.pread(b, 6 * B, 0) == bdata
    ext = [(lo // B, ph // B, ln // B, bool(fl & FIEMAP_EXTENT_SHARED)) for lo, ph, ln, fl in fiemap(b)]
    assert ext == [(0, p0, 1, True), (1, p0 + 3, 3, True)], ext
    # b's owners are gone (the unmap starts at the PMD boundary below the
    # offset, so block 0's too) until b faults them again
    want = {(p0 + i, ia, i) for i in range(6)}
    assert rmap()[1] == want, rmap()[1] ^ want
    mb = mmap.mmap(b, 4 * B)
    assert mb[:] == bdata
    want |= {(p0, ib, 0)} | {(p0 + 3 + i, ib, 1 + i) for i in range(3)}
    assert rmap()[1] == want, rmap()[1] ^ want
    mb.close()
    falloc(b, FALLOC_FL_INSERT_RANGE, 2 * B, 2 * B)  # b: 0, 3, hole, hole, 4, 5
    bdata = bdata[:2 * B] + bytes(2 * B) + bdata[2 * B:]
    assert os.pread(b, 7 * B, 0) == bdata
    ext = [(lo // B, ph // B, ln // B, bool(fl & FIEMAP_EXTENT_SHARED)) for lo, ph, ln, fl in fiemap(b)]
    assert ext == [(0, p0, 1, True), (1, p0 + 3, 1, True), (4, p0 + 4, 2, True)], ext
    want = {(p0 + i, ia, i) for i in range(6)}
    assert rmap()[1] == want, rmap()[1] ^ want
    # nothing was copied: the two blocks b dropped are still a's
    assert gtest.statfs_free() == free0
    assert ma[:] == data
    # a write into b's moved shared block copies it; a keeps its data
    os.pwrite(b, b"Z", 4 * B)
    assert os.pread(a, 6 * B, 0) == data and ma[:] == data
    ma.close()
    for fd, name in ((a, "sa"), (b, "sb")):
        os.close(fd)
        os.unlink(name)
    header, rows = rmap()
    assert rows == set() and "owners 0" in header, (header, rows)


if __name__ == "__main__":
    gtest.main(globals())
