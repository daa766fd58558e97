#!/usr/bin/env python3
"""2 MiB (PMD) DAX entries and sharing.

fsdax in 6.12 replaces whatever entry it finds when it inserts a mapping of a
shared extent (IOMAP_F_SHARED), without looking at the entry's order: a PTE
fault that lands in a range still held by a PMD entry swaps the 512-page
entry for a one-page one and leaves mapping->nrpages 511 too high, which
ends in BUG_ON(inode->i_data.nrpages) when the inode is evicted. ferrofs
therefore never lets a PMD entry cover a shared block: reflink and dedupe
drop the source's DAX entries of the range, and a PMD read fault over shared
blocks falls back to PTEs. These tests drive each way in and then evict the
inodes (any leak is then a kernel BUG, which fails the run)."""
import mmap
import os
import sys

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import clone, clone_range, dedupe, pattern

B = 4096
PMD = 2 << 20


def stat(name):
    dev = os.path.basename(gtest.DEV)
    with open(f"/sys/kernel/debug/ferrofs/{dev}/{name}") as f:
        return int(f.read())


def pmd_file(name, size=2 * PMD, seed=1):
    """A file written through PMD write faults, so its extents are 2 MiB
    aligned and its mapping holds PMD entries."""
    fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    os.ftruncate(fd, size)
    m = mmap.mmap(fd, size)
    before = stat("pmd_faults")
    data = pattern(seed, size)
    m[:] = data
    assert stat("pmd_faults") - before >= size // PMD, "no PMD faults: test premise broken"
    m.close()
    return fd, data


def small_map_read(fd, off, n=2 * B):
    """Read through a mapping too small for a PMD: PTE faults only."""
    m = mmap.mmap(fd, n, offset=off, prot=mmap.PROT_READ)
    try:
        return m[:]
    finally:
        m.close()


def evict(*names):
    gtest.release_mount()
    for n in names:
        os.unlink(n)
    gtest.drop_caches()


def test_clone_source_keeps_no_pmd_entry():
    fd, data = pmd_file("a")
    # a reader keeps the PMD mapping alive across the clone
    keep = mmap.mmap(fd, 2 * PMD, prot=mmap.PROT_READ)
    assert keep[PMD + 5] == data[PMD + 5]
    b = os.open("b", os.O_RDWR | os.O_CREAT, 0o644)
    clone(fd, b)
    assert small_map_read(fd, B) == data[B:3 * B]
    assert small_map_read(b, PMD + B) == data[PMD + B:PMD + 3 * B]
    # CoW through a small (PTE) writable mapping of the source
    m = mmap.mmap(fd, 2 * B, offset=PMD)
    m[0:4] = b"cow!"
    m.close()
    assert keep[PMD:PMD + 4] == b"cow!"
    assert os.pread(b, 4, PMD) == data[PMD:PMD + 4]
    keep.close()
    os.close(fd)
    os.close(b)
    evict("a", "b")


def test_clone_range_and_dedupe_sources():
    fd, data = pmd_file("a", seed=2)
    keep = mmap.mmap(fd, 2 * PMD, prot=mmap.PROT_READ)
    assert keep[7] == data[7]
    b = os.open("b", os.O_RDWR | os.O_CREAT, 0o644)
    os.ftruncate(b, 2 * PMD)
    clone_range(fd, 64 * B, 16 * B, b, 0)
    assert small_map_read(fd, 64 * B) == data[64 * B:66 * B]
    c = os.open("c", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(c, data[PMD:])
    st, same = dedupe(fd, PMD, PMD, c, 0)
    assert (st, same) == (0, PMD), (st, same)
    assert small_map_read(fd, PMD + 3 * B) == data[PMD + 3 * B:PMD + 5 * B]
    keep.close()
    for x in (fd, b, c):
        os.close(x)
    evict("a", "b", "c")


def test_pmd_read_of_shared_extent_falls_back():
    fd, data = pmd_file("a", seed=3)
    b = os.open("b", os.O_RDWR | os.O_CREAT, 0o644)
    clone(fd, b)
    before = stat("pmd_faults")
    m = mmap.mmap(b, 2 * PMD, prot=mmap.PROT_READ)
    assert m[:] == data
    assert stat("pmd_faults") == before, "a PMD entry now covers shared blocks"
    # now a PTE fault with a shared extent in the same file
    assert small_map_read(b, 5 * B) == data[5 * B:7 * B]
    m.close()
    os.close(fd)
    os.close(b)
    evict("a", "b")


if __name__ == "__main__":
    gtest.main(globals())
