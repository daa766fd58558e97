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


if __name__ == "__main__":
    gtest.main(globals())
