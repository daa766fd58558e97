#!/usr/bin/env python3
"""The copy-on-write unit of write(2): a write whose ends land on shared
blocks first unshares the aligned 32-block (128 KiB) unit around each end,
as XFS's default CoW extent size does, so small random writes into a
reflinked file leave a few large extents (xfstests generic/301, 302), not
one per block. Bytes, space, FIEMAP shared flags, and mappings of the
unit's other pages (which must not keep reaching the old, shared blocks)."""
import mmap
import os
import random
import sys

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import FIEMAP_EXTENT_SHARED, clone, mkfile, pattern
from fsutil import fiemap as extents, read_all

B = 4096
UNIT = 32


def shared_blocks(fd):
    s = set()
    for lo, _, ln, fl in extents(fd):
        if fl & FIEMAP_EXTENT_SHARED:
            s.update(range(lo // B, (lo + ln) // B))
    return s


def cloned(seed, size):
    """a holding `size` pattern bytes and b a clone of it: (data, a, b)."""
    data = pattern(seed, size)
    a = mkfile("a", data)
    b = os.open("b", os.O_RDWR | os.O_CREAT, 0o644)
    clone(a, b)
    return data, a, b


def test_random_block_writes_leave_unit_sized_extents():
    """generic/301's pattern at 1/8 the size: every block of a 256-block
    clone rewritten once, in random order, one block per write."""
    n = 256
    data, a, b = cloned(1, n * B)
    free0 = gtest.statfs_free()
    want = bytearray(data)
    order = list(range(n))
    random.Random(7).shuffle(order)
    for i in order:
        blk = bytes([i & 0xFF]) * B
        os.pwrite(b, blk, i * B)
        want[i * B:(i + 1) * B] = blk
    assert read_all(b) == bytes(want)
    assert read_all(a) == data, "the source changed"
    assert shared_blocks(b) == set() and shared_blocks(a) == set()
    assert gtest.statfs_free() == free0 - n, (free0, gtest.statfs_free())
    # one copy per unit: at most n / UNIT extents (fewer where units merged)
    assert len(extents(b)) <= n // UNIT, extents(b)
    gtest.remount()
    a, b = os.open("a", os.O_RDONLY), os.open("b", os.O_RDONLY)
    assert read_all(a) == data and read_all(b) == bytes(want)


def test_only_the_units_around_the_ends_are_copied():
    n = 160
    data, a, b = cloned(2, n * B)
    free0 = gtest.statfs_free()
    # bytes 40*B+100 .. 99*B+9: first block 40 (unit 32-63), last block 99
    # (unit 96-127); the blocks between are copied because written
    os.pwrite(b, b"w" * (59 * B - 90), 40 * B + 100)
    assert shared_blocks(b) == set(range(32)) | set(range(128, n)), sorted(shared_blocks(b))
    assert gtest.statfs_free() == free0 - 96, (free0, gtest.statfs_free())
    want = bytearray(data)
    want[40 * B + 100:99 * B + 10] = b"w" * (59 * B - 90)
    assert read_all(b) == bytes(want) and read_all(a) == data
    # an overwrite of private blocks copies nothing more
    os.pwrite(b, b"z" * 10, 50 * B)
    want[50 * B:50 * B + 10] = b"z" * 10
    assert gtest.statfs_free() == free0 - 96
    assert read_all(b) == bytes(want)


def test_write_past_the_shared_part_and_at_eof():
    """A unit reaching past the shared blocks or EOF copies only what is
    shared and moves no size."""
    data, a, b = cloned(3, 40 * B + 123)
    os.pwrite(b, b"e" * 5, 40 * B + 10)
    assert os.fstat(b).st_size == len(data)
    assert shared_blocks(b) == set(range(32)), sorted(shared_blocks(b))
    want = bytearray(data)
    want[40 * B + 10:40 * B + 15] = b"e" * 5
    assert read_all(b) == bytes(want) and read_all(a) == data


def test_mapped_neighbours_do_not_keep_the_shared_blocks():
    """Pages of the unit that this file has mapped from the shared blocks
    are unmapped before the copy: afterwards the mapping shows this file's
    copy, not what the other owner later writes in place."""
    data, a, b = cloned(4, UNIT * B)
    mb = mmap.mmap(b, UNIT * B, prot=mmap.PROT_READ)
    assert mb[:] == data  # read faults: every page maps a shared block
    os.pwrite(b, b"B" * 8, 5 * B)  # copies the whole unit
    assert shared_blocks(a) == set()
    # a owns its blocks alone now and overwrites them in place
    os.pwrite(a, b"A" * B, 7 * B)
    want = bytearray(data)
    want[5 * B:5 * B + 8] = b"B" * 8
    assert mb[5 * B:5 * B + 8] == b"B" * 8
    assert mb[7 * B:8 * B] == data[7 * B:8 * B], "b's mapping still reaches a's block"
    assert mb[:] == bytes(want)
    mb.close()
    assert read_all(b) == bytes(want)


def test_cow_hint_of_one_block_copies_one_block():
    """A file's CoW extent size hint replaces the default unit: 4 KiB is
    one block, copied alone (the ioctl as xfs_io cowextsize issues it)."""
    import fcntl
    import struct
    data = pattern(5, 64 * B)
    a = mkfile("a", data)
    b = os.open("b", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.ioctl(b, 0x401C5820, struct.pack("IIIII8x", 0x10000, 0, 0, 0, B))
    clone(a, b)
    os.pwrite(b, b"1", 9 * B)
    assert shared_blocks(b) == set(range(64)) - {9}, sorted(shared_blocks(b))


if __name__ == "__main__":
    gtest.main(globals())
