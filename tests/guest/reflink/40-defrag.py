#!/usr/bin/env python3
"""Online defragmentation (FERROFS_IOC_DEFRAG, ferrofs-defrag): fragmented
files become one extent with the same bytes, times, size and block count;
mappings see the moved blocks; shared extents stay shared; errno cases."""
import fcntl
import mmap
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import FIEMAP_EXTENT_SHARED, clone_range, expect_errno, pattern
from fsutil import fiemap as extents, read_all

B = 4096
FERROFS_IOC_DEFRAG = 0xC028F401
FS_IOC_SETFLAGS = 0x40086602
FS_APPEND_FL = 0x20


def defrag(fd, start=0, length=0, flags=0):
    """The ioctl: (bytes moved, runs left for want of space)."""
    buf = bytearray(struct.pack("5Q", start, length, flags, 0, 0))
    fcntl.ioctl(fd, FERROFS_IOC_DEFRAG, buf)
    return struct.unpack_from("QQ", buf, 24)


def fragmented(name, blocks, seed):
    """name with `blocks` one-block extents, a block of another file between
    each two on the media; returns (fd, data)."""
    data = pattern(seed, blocks * B)
    fd = os.open(name, os.O_RDWR | os.O_CREAT, 0o644)
    other = os.open(name + ".between", os.O_RDWR | os.O_CREAT, 0o644)
    for i in range(blocks):
        os.pwrite(fd, data[i * B:(i + 1) * B], i * B)
        os.pwrite(other, b"x" * B, i * B)
    os.close(other)
    assert len(extents(fd)) == blocks, extents(fd)
    return fd, data


def times(fd):
    st = os.fstat(fd)
    return (st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_blocks)


def test_fragmented_file_becomes_one_extent():
    fd, data = fragmented("f", 16, 1)
    # an atime past mtime and ctime, so that relatime leaves it alone during
    # the check: a read's own atime is the coarse clock, which can be at or
    # before the fine-grained mtime of the writes just made (the check then
    # saw a later read move it)
    st = os.fstat(fd)
    os.utime(fd, ns=(st.st_mtime_ns + 10**10, st.st_mtime_ns))
    assert read_all(fd) == data
    before, free0 = times(fd), gtest.statfs_free()
    out = gtest.sh("ferrofs-defrag -v f")
    assert out.strip() == "f: 16 extents before, 1 after, 65536 bytes moved", out
    assert len(extents(fd)) == 1, extents(fd)
    assert read_all(fd) == data
    assert times(fd) == before, (times(fd), before)
    assert gtest.statfs_free() == free0, "the old blocks were not freed"
    # nothing left to do
    assert defrag(fd) == (0, 0)
    gtest.remount()
    fd = os.open("f", os.O_RDONLY)
    assert read_all(fd) == data and len(extents(fd)) == 1


def test_backwards_sync_writes():
    """xfstests generic/018's case: blocks written last to first, O_SYNC."""
    data = pattern(2, 10 * B)
    for i in range(9, -1, -1):
        fd = os.open("f", os.O_RDWR | os.O_CREAT | os.O_SYNC, 0o644)
        os.pwrite(fd, data[i * B:(i + 1) * B], i * B)
        os.close(fd)
    fd = os.open("f", os.O_RDWR)
    n0 = len(extents(fd))
    assert n0 > 1, "not fragmented"
    moved, _ = defrag(fd)
    assert moved > 0
    assert len(extents(fd)) == 1, extents(fd)
    assert read_all(fd) == data


def test_mapping_sees_moved_blocks():
    """A shared mapping faulted in before the move reads and writes the new
    blocks after it: the old PTEs went with the old blocks."""
    fd, data = fragmented("f", 8, 3)
    old = [e[1] for e in extents(fd)]
    m = mmap.mmap(fd, 8 * B)
    assert m[:] == data
    moved, _ = defrag(fd)
    assert moved > 0
    new = extents(fd)
    assert len(new) == 1 and new[0][1] not in old, (old, new)
    assert m[:] == data
    m[5 * B:5 * B + 5] = b"after"
    assert os.pread(fd, 5, 5 * B) == b"after", "a store went to the old block"
    os.pwrite(fd, b"WRITE", 2 * B)
    assert m[2 * B:2 * B + 5] == b"WRITE", "the mapping reads the old block"
    m.close()
    # the old blocks are free again and get reused; the file must not change
    junk = os.open("junk", os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(junk, b"j" * (64 * B), 0)
    want = bytearray(data)
    want[5 * B:5 * B + 5] = b"after"
    want[2 * B:2 * B + 5] = b"WRITE"
    assert read_all(fd) == bytes(want)


def test_shared_extents_stay_shared():
    fd, data = fragmented("f", 8, 4)
    c = os.open("c", os.O_RDWR | os.O_CREAT, 0o644)
    clone_range(fd, 3 * B, 2 * B, c, 0)
    shared = [e for e in extents(fd) if e[3] & FIEMAP_EXTENT_SHARED]
    assert [e[0] for e in shared] == [3 * B, 4 * B], extents(fd)
    free0 = gtest.statfs_free()
    moved, _ = defrag(fd)
    assert moved == 6 * B, moved
    after = extents(fd)
    assert [(e[0], e[1]) for e in after if e[3] & FIEMAP_EXTENT_SHARED] == [(e[0], e[1]) for e in shared], after
    assert len(after) == 4, after  # 0-2, 3, 4, 5-7
    assert gtest.statfs_free() == free0, "defrag used space"
    assert read_all(fd) == data and read_all(c) == data[3 * B:5 * B]


def test_range_and_holes():
    fd, data = fragmented("f", 12, 5)
    # only [4, 8) blocks: one extent there, the rest as it was
    moved, _ = defrag(fd, 4 * B, 4 * B)
    assert moved == 4 * B
    assert [(e[0], e[2]) for e in extents(fd)][3:6] == [(3 * B, B), (4 * B, 4 * B), (8 * B, B)], extents(fd)
    assert read_all(fd) == data
    # a file of blocks with holes between: nothing moves
    h = os.open("h", os.O_RDWR | os.O_CREAT, 0o644)
    for i in range(0, 16, 2):
        os.pwrite(h, b"h" * B, i * B)
    e0 = extents(h)
    assert defrag(h) == (0, 0) and extents(h) == e0


def test_errors():
    fd, data = fragmented("f", 4, 6)
    ro = os.open("f", os.O_RDONLY)
    expect_errno("EBADF", defrag, ro)
    expect_errno("EINVAL", defrag, fd, flags=1)
    d = os.open(".", os.O_RDONLY)
    expect_errno("EINVAL", defrag, d)
    fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("i", FS_APPEND_FL))
    expect_errno("EPERM", defrag, fd)
    fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("i", 0))
    assert read_all(fd) == data and len(extents(fd)) == 4
    # the tool: a file elsewhere is not ours, exit 1 and a message saying so
    r = subprocess.run(["ferrofs-defrag", "."], capture_output=True, text=True)
    assert r.returncode == 1 and "not a regular file" in r.stderr, r
    with open("/tmp/defrag-not-ferrofs", "w") as f:
        f.write("x")
    r = subprocess.run(["ferrofs-defrag", "/tmp/defrag-not-ferrofs"], capture_output=True, text=True)
    assert r.returncode == 1 and "not on a ferrofs" in r.stderr, r
    r = subprocess.run(["ferrofs-defrag", "-n", "f"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == "f: 4 extents\n", r


if __name__ == "__main__":
    gtest.main(globals())
