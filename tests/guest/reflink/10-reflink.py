#!/usr/bin/env python3
"""Reflink, dedupe and copy-on-write on DAX: every copy byte for byte, FIEMAP
shared flags, space accounting, errno cases, and mappings that must see the
new blocks after a remap."""
import ctypes
import errno
import fcntl
import mmap
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import FALLOC_FL_KEEP_SIZE, FIEMAP_EXTENT_SHARED, clone, clone_range, dedupe, expect_errno, fallocate, pattern
from fsutil import fiemap as extents, mkfile, read_all

B = 4096
FS_IOC_SETFLAGS = 0x40086602
FS_IMMUTABLE_FL, FS_APPEND_FL = 0x10, 0x20


def shared_bytes(fd):
    return sum(e[2] for e in extents(fd) if e[3] & FIEMAP_EXTENT_SHARED)


def test_clone_then_cow_write():
    data = pattern(1, 64 * B)
    a = mkfile("a", data)
    free0 = gtest.statfs_free()
    b = os.open("b", os.O_RDWR | os.O_CREAT, 0o644)
    clone(a, b)
    assert read_all(b) == data
    assert gtest.statfs_free() == free0, "reflink allocated data blocks"
    assert shared_bytes(a) == 64 * B and shared_bytes(b) == 64 * B, (extents(a), extents(b))
    # CoW of the 32-block (128 KiB) CoW unit around the write, XFS's
    # default: reflink/50-cow-unit.py
    os.pwrite(b, b"X" * 10, 5 * B + 100)
    assert gtest.statfs_free() == free0 - 32, (free0, gtest.statfs_free())
    assert read_all(a) == data, "the source changed"
    want = bytearray(data)
    want[5 * B + 100:5 * B + 110] = b"X" * 10
    assert read_all(b) == bytes(want)
    assert shared_bytes(b) == 32 * B and shared_bytes(a) == 32 * B, (extents(a), extents(b))
    gtest.remount()
    a, b = os.open("a", os.O_RDONLY), os.open("b", os.O_RDONLY)
    assert read_all(a) == data and read_all(b) == bytes(want)


def test_cow_through_mmap():
    data = pattern(2, 8 * B)
    a = mkfile("a", data)
    b = os.open("b", os.O_RDWR | os.O_CREAT, 0o644)
    clone(a, b)
    ma = mmap.mmap(a, 8 * B)
    mb = mmap.mmap(b, 8 * B)
    assert ma[:] == data and mb[:] == data  # read faults on shared blocks
    mb[3 * B:3 * B + 4] = b"COW!"  # write fault: CoW in place of the shared page
    assert ma[:] == data, "store through b's mapping reached a"
    assert read_all(a) == data
    assert mb[3 * B:3 * B + 4] == b"COW!" and os.pread(b, 4, 3 * B) == b"COW!"
    want = data[:3 * B] + b"COW!" + data[3 * B + 4:]
    assert mb[:] == want
    ma[0:2] = b"AA"  # and the other way round
    assert mb[0:2] == data[0:2]


def test_cow_pmd():
    size = 4 << 20
    a = os.open("a", os.O_RDWR | os.O_CREAT, 0o644)
    os.ftruncate(a, size)
    m = mmap.mmap(a, size)
    data = pattern(3, size)
    m[:] = data
    m.close()
    b = os.open("b", os.O_RDWR | os.O_CREAT, 0o644)
    clone(a, b)
    mb = mmap.mmap(b, size)
    mb[(2 << 20) + 7] = 0x11
    assert os.pread(a, size, 0) == data
    want = bytearray(data)
    want[(2 << 20) + 7] = 0x11
    assert os.pread(b, size, 0) == bytes(want)


def fibmap(fd, block):
    """FIBMAP: the device block behind file block `block` (0: none)."""
    return struct.unpack("i", fcntl.ioctl(fd, 1, struct.pack("i", block)))[0]


def test_fibmap_answers_private_written_blocks_only():
    data = pattern(7, 8 * B)
    f = mkfile("fib", data)
    os.ftruncate(f, 24 * B)
    fallocate(f, FALLOC_FL_KEEP_SIZE, 20 * B, B)
    (lo, phys, length, _), = [e for e in extents(f) if e[0] == 0]
    assert length >= 8 * B, extents(f)
    got = [fibmap(f, i) for i in range(8)]
    assert got == [phys // B + i for i in range(8)], (got, phys)
    # those device blocks hold the file's bytes
    dev = os.open(gtest.DEV, os.O_RDONLY)
    try:
        assert os.pread(dev, 8 * B, got[0] * B) == data
    finally:
        os.close(dev)
    assert fibmap(f, 10) == 0, "a hole"
    assert fibmap(f, 20) == 0, "a preallocated (unwritten) block"
    assert fibmap(f, 1 << 30) == 0, "past EOF"
    # shared blocks: none, in either file (writing them behind the
    # filesystem would change both)
    g = os.open("fib2", os.O_RDWR | os.O_CREAT, 0o644)
    clone(f, g)
    assert fibmap(f, 0) == 0 and fibmap(g, 0) == 0
    # a private copy has a device block again
    os.pwrite(g, b"Z", 0)
    assert fibmap(g, 0) not in (0, got[0]), fibmap(g, 0)


def test_clone_range_and_self():
    data = pattern(4, 32 * B)
    a = mkfile("a", data)
    clone_range(a, 0, 8 * B, a, 16 * B)  # same file, other offset
    want = data[:16 * B] + data[:8 * B] + data[24 * B:]
    assert read_all(a) == want
    expect_errno("EINVAL", clone_range, a, 0, 8 * B, a, 4 * B)  # overlapping
    expect_errno("EINVAL", clone_range, a, 100, B, a, 20 * B)  # unaligned
    c = os.open("c", os.O_RDWR | os.O_CREAT, 0o644)
    clone_range(a, 4 * B, 4 * B, c, 10 * B)  # past EOF: grows the file, hole before
    assert os.fstat(c).st_size == 14 * B
    assert os.pread(c, 14 * B, 0) == bytes(10 * B) + want[4 * B:8 * B]


def test_clone_unaligned_eof():
    data = pattern(5, 3 * B + 123)
    a = mkfile("a", data)
    b = os.open("b", os.O_RDWR | os.O_CREAT, 0o644)
    clone(a, b)
    assert os.fstat(b).st_size == len(data) and read_all(b) == data


def test_dedupe():
    data = pattern(6, 16 * B)
    a = mkfile("a", data)
    b = mkfile("b", data)
    free0 = gtest.statfs_free()
    status, n = dedupe(a, 0, 16 * B, b, 0)
    assert (status, n) == (0, 16 * B), (status, n)
    assert gtest.statfs_free() == free0 + 16, "dedupe freed no blocks"
    assert read_all(b) == data and shared_bytes(b) == 16 * B
    c = mkfile("c", data[:B] + b"different" + data[B + 9:])
    status, n = dedupe(a, 0, 4 * B, c, 0)
    assert status == 1 and n == 0, (status, n)  # FILE_DEDUPE_RANGE_DIFFERS
    assert shared_bytes(c) == 0


def test_copy_file_range_shares():
    data = pattern(7, 256 * B)
    a = mkfile("a", data)
    b = os.open("b", os.O_RDWR | os.O_CREAT, 0o644)
    free0 = gtest.statfs_free()
    assert os.copy_file_range(a, b, len(data), 0, 0) == len(data)
    assert read_all(b) == data
    assert gtest.statfs_free() >= free0 - 2, "copy_file_range copied instead of sharing"
    assert shared_bytes(b) == len(data)


def test_cp_reflink_always():
    data = pattern(8, 1 << 20)
    os.close(mkfile("src", data))
    subprocess.run(["cp", "--reflink=always", "src", "dst"], check=True)
    with open("dst", "rb") as f:
        assert f.read() == data
    out = subprocess.run(["xfs_io", "-c", "fiemap -v", "dst"], capture_output=True, text=True).stdout
    assert "0x2000" in out or "0x2001" in out, out


def test_remap_replaces_mapped_destination():
    old = pattern(9, 4 * B)
    new = pattern(10, 4 * B)
    d = mkfile("dst", old)
    s = mkfile("src", new)
    m = mmap.mmap(d, 4 * B)
    assert m[:] == old
    clone(s, d)
    assert m[:] == new, "a mapping kept reading the destination's old blocks"
    m[0:3] = b"abc"  # and writing through it CoWs, the source is untouched
    assert read_all(s) == new


def test_errors():
    a = mkfile("a", pattern(11, 4 * B))
    os.mkdir("dir")
    dfd = os.open("dir", os.O_RDONLY)
    b = os.open("b", os.O_RDWR | os.O_CREAT, 0o644)
    expect_errno("EISDIR", clone, dfd, b)
    ro = os.open("a", os.O_RDONLY)
    expect_errno("EBADF", clone, a, ro)  # destination not open for writing
    t = os.open("/tmp/other-fs", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(t, b"x" * B)
    expect_errno("EXDEV", clone, t, b)
    imm = mkfile("imm", b"i" * B)
    fcntl.ioctl(imm, FS_IOC_SETFLAGS, struct.pack("i", FS_IMMUTABLE_FL))
    expect_errno("EPERM", clone, a, imm)
    fcntl.ioctl(imm, FS_IOC_SETFLAGS, struct.pack("i", 0))
    expect_errno("EINVAL", clone_range, a, 0, B, b, 100)  # unaligned destination


def test_concurrent_cow_through_mmap():
    """Two processes store through mmap into two clones of the same block at
    once; each gets its own copy, and a reader of a third copy sees the
    original bytes throughout."""
    data = pattern(13, 4 * B)
    a = mkfile("a", data)
    for n in ("b", "c"):
        d = os.open(n, os.O_RDWR | os.O_CREAT, 0o644)
        clone(a, d)
        os.close(d)
    os.fsync(a)
    pids = []
    for n, byte in (("b", 0xB0), ("c", 0xC0)):
        pid = os.fork()
        if pid == 0:
            try:
                fd = os.open(n, os.O_RDWR)
                m = mmap.mmap(fd, 4 * B)
                for _ in range(3):  # every 7th byte, over and over
                    for off in range(0, 4 * B, 7):
                        m[off] = byte
                m.flush()
                os._exit(0)
            except BaseException:
                os._exit(1)
        pids.append(pid)
    reader = mmap.mmap(os.open("a", os.O_RDONLY), 4 * B, prot=mmap.PROT_READ)
    bad = 0
    alive, status = set(pids), {}
    while alive:  # read the third copy for as long as the writers run
        if reader[:] != data:
            bad += 1
            break
        for p in list(alive):
            r, st = os.waitpid(p, os.WNOHANG)
            if r == p:
                status[p] = st
                alive.discard(p)
    for p in alive:
        status[p] = os.waitpid(p, 0)[1]
    assert all(os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0 for st in status.values()), status
    assert bad == 0 and reader[:] == data, "the third copy changed"
    for n, byte in (("b", 0xB0), ("c", 0xC0)):
        got = os.pread(os.open(n, os.O_RDONLY), 4 * B, 0)
        want = bytearray(data)
        for off in range(0, 4 * B, 7):
            want[off] = byte
        assert got == bytes(want), f"{n} lost its own stores or got the other's"


def test_ferrofs_du_reports_shared_and_exclusive():
    a = mkfile("a", pattern(12, 256 * B))
    os.mkdir("d")
    b = os.open("d/b", os.O_RDWR | os.O_CREAT, 0o644)
    clone(a, b)
    # the write copies b's 32-block CoW unit around block 10: 32 blocks of
    # b are now its own, and so are the 32 of a they were shared with
    os.pwrite(b, b"z", 10 * B)
    os.fsync(b)
    out = subprocess.run(["ferrofs-du", "."], capture_output=True, text=True, check=True).stdout
    rows = {l.split()[3]: tuple(int(x) for x in l.split()[:3]) for l in out.splitlines()[1:-2]}
    assert rows["./a"] == (224 * B, 32 * B, 256 * B), out
    assert rows["./d/b"] == (224 * B, 32 * B, 256 * B), out
    assert out.splitlines()[-1].split()[0] == str(288 * B), out  # on media


if __name__ == "__main__":
    gtest.main(globals())
