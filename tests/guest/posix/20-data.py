#!/usr/bin/env python3
"""The DAX read/write path: bytes read back exactly, holes, EOF, truncate,
fallocate modes, SEEK_HOLE/SEEK_DATA, FIEMAP, persistence, ENOSPC."""
import errno
import fcntl
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import (FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_INSERT_RANGE, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE,
                    FALLOC_FL_ZERO_RANGE, expect_errno, fallocate, fiemap, pattern)

B = 4096


class Model:
    """A file and its expected contents, checked byte for byte."""

    def __init__(self, name):
        self.fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        self.data = bytearray()

    def pwrite(self, off, buf):
        assert os.pwrite(self.fd, buf, off) == len(buf)
        if off > len(self.data):
            self.data.extend(bytes(off - len(self.data)))
        self.data[off:off + len(buf)] = buf

    def truncate(self, size):
        os.ftruncate(self.fd, size)
        if size < len(self.data):
            del self.data[size:]
        else:
            self.data.extend(bytes(size - len(self.data)))

    def check(self):
        assert os.fstat(self.fd).st_size == len(self.data)
        got = os.pread(self.fd, len(self.data) + B, 0)
        if got != bytes(self.data):
            for i, (a, b) in enumerate(zip(got, self.data)):
                if a != b:
                    raise AssertionError(f"byte {i}: got {a:#x}, want {b:#x}")
            raise AssertionError(f"length {len(got)} != {len(self.data)}")


def test_straddling_writes():
    m = Model("f")
    seed = 1
    for off, n in [(0, 1), (B - 3, 7), (2 * B - 1, B + 2), (5 * B, 3 * B), (100, 10000), (17 * B + 5, 1),
                   (3, B * 9 + 11), (64 * B - 1, 2), (1 << 20, 12345)]:
        m.pwrite(off, pattern(seed, n))
        seed += 1
        m.check()
    gtest.remount()
    m.fd = os.open("f", os.O_RDWR)
    m.check()


def test_sparse_and_holes():
    m = Model("sparse")
    m.pwrite(10 * B, b"end")
    m.check()
    assert os.pread(m.fd, B, 0) == bytes(B)
    assert os.lseek(m.fd, 0, os.SEEK_DATA) == 10 * B
    assert os.lseek(m.fd, 0, os.SEEK_HOLE) == 0
    assert os.lseek(m.fd, 10 * B, os.SEEK_HOLE) == 10 * B + 3
    expect_errno("ENXIO", os.lseek, m.fd, 11 * B, os.SEEK_DATA)
    st = os.fstat(m.fd)
    assert st.st_blocks == 8, st.st_blocks  # one 4 KiB block


def test_truncate():
    m = Model("t")
    m.pwrite(0, pattern(3, 5 * B + 100))
    m.truncate(2 * B + 7)
    m.check()
    m.truncate(9 * B)  # grows with zeroes, including the old EOF block's tail
    m.check()
    m.truncate(0)
    m.check()
    m.pwrite(B, b"abc")
    m.check()


def test_append_and_eof():
    fd = os.open("a", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for i in range(50):
        os.write(fd, pattern(i, 333))
    os.close(fd)
    want = b"".join(pattern(i, 333) for i in range(50))
    with open("a", "rb") as f:
        assert f.read() == want
    fd = os.open("a", os.O_RDONLY)
    assert os.pread(fd, 100, len(want)) == b""
    assert os.pread(fd, 100, len(want) - 10) == want[-10:]
    os.close(fd)


def test_osync_odirect():
    fd = os.open("s", os.O_WRONLY | os.O_CREAT | os.O_SYNC | os.O_DIRECT, 0o644)
    import mmap
    buf = mmap.mmap(-1, B)
    buf.write(pattern(9, B))
    assert os.pwrite(fd, buf, 0) == B
    os.fsync(fd)
    os.fdatasync(fd)
    os.close(fd)
    with open("s", "rb") as f:
        assert f.read() == pattern(9, B)


def test_fallocate_modes():
    m = Model("fa")
    fallocate(m.fd, 0, 0, 8 * B)
    m.data.extend(bytes(8 * B))
    m.check()
    fallocate(m.fd, FALLOC_FL_KEEP_SIZE, 8 * B, 8 * B)
    m.check()
    assert os.fstat(m.fd).st_blocks >= 16 * 8
    m.pwrite(0, pattern(4, 12 * B))
    free0 = gtest.statfs_free()
    fallocate(m.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, B + 100, 3 * B)
    m.data[B + 100:4 * B + 100] = bytes(3 * B)
    m.check()
    assert gtest.statfs_free() == free0 + 2  # two whole blocks freed
    fallocate(m.fd, FALLOC_FL_ZERO_RANGE, 6 * B - 5, 2 * B + 10)
    m.data[6 * B - 5:8 * B + 5] = bytes(2 * B + 10)
    m.check()
    fallocate(m.fd, FALLOC_FL_ZERO_RANGE, 11 * B, 4 * B)  # beyond EOF, grows size
    m.data.extend(bytes(15 * B - len(m.data)))
    m.data[11 * B:] = bytes(len(m.data) - 11 * B)
    m.check()
    expect_errno("EINVAL", fallocate, m.fd, 0, 0, 0)


def test_collapse_insert_range():
    """FALLOC_FL_COLLAPSE_RANGE and INSERT_RANGE: the data after the offset
    moves by the length (bytes read back through read and through a mapping
    made before the shift), the size follows, and every error XFS and the
    VFS give for bad ranges and flag combinations."""
    import mmap
    m = Model("sh")
    m.pwrite(0, pattern(31, 16 * B + 100))
    mp = mmap.mmap(m.fd, 16 * B)
    assert mp[9 * B:10 * B] == m.data[9 * B:10 * B]       # fault the tail in
    free0 = gtest.statfs_free()
    fallocate(m.fd, FALLOC_FL_COLLAPSE_RANGE, 4 * B, 3 * B)
    del m.data[4 * B:7 * B]
    m.check()
    assert gtest.statfs_free() == free0 + 3                # the range's blocks freed
    assert mp[9 * B:10 * B] == m.data[9 * B:10 * B], "stale mapping after collapse"
    fallocate(m.fd, FALLOC_FL_INSERT_RANGE, 2 * B, 5 * B)
    m.data[2 * B:2 * B] = bytes(5 * B)
    m.check()
    assert gtest.statfs_free() == free0 + 3                # a hole, nothing allocated
    assert mp[:] == m.data[:16 * B], "stale mapping after insert"
    ext = fiemap(m.fd)
    assert not any(lo < 7 * B and lo + ln > 2 * B for lo, _, ln, _ in ext), ext
    mp[8 * B:8 * B + 5] = b"hello"                         # store through the old mapping
    m.data[8 * B:8 * B + 5] = b"hello"
    mp.close()
    m.check()
    # preallocation past EOF moves with the rest
    pre = (len(m.data) + B - 1) // B * B + B
    fallocate(m.fd, FALLOC_FL_KEEP_SIZE, pre, 2 * B)
    fallocate(m.fd, FALLOC_FL_INSERT_RANGE, 0, B)
    m.data[0:0] = bytes(B)
    m.check()
    un = [(lo, ln) for lo, _, ln, fl in fiemap(m.fd) if fl & 0x800]
    assert un == [(pre + B, 2 * B)], un
    fallocate(m.fd, FALLOC_FL_COLLAPSE_RANGE, 0, B)
    del m.data[0:B]
    m.check()
    size = len(m.data)
    for off, n in ((100, B), (B, 100), (B, B + 1)):
        expect_errno("EINVAL", fallocate, m.fd, FALLOC_FL_COLLAPSE_RANGE, off, n)
        expect_errno("EINVAL", fallocate, m.fd, FALLOC_FL_INSERT_RANGE, off, n)
    last = size // B * B
    assert size % B
    expect_errno("EINVAL", fallocate, m.fd, FALLOC_FL_COLLAPSE_RANGE, last, B)       # reaches EOF
    expect_errno("EINVAL", fallocate, m.fd, FALLOC_FL_COLLAPSE_RANGE, 0, last + B)  # past it
    expect_errno("EINVAL", fallocate, m.fd, FALLOC_FL_INSERT_RANGE, last + B, B)    # at/after EOF
    expect_errno("EOPNOTSUPP", fallocate, m.fd, FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_KEEP_SIZE, 0, B)
    expect_errno("EOPNOTSUPP", fallocate, m.fd, FALLOC_FL_INSERT_RANGE | FALLOC_FL_KEEP_SIZE, 0, B)
    expect_errno("EOPNOTSUPP", fallocate, m.fd, FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_PUNCH_HOLE, 0, B)
    m.check()
    gtest.remount()
    m.fd = os.open("sh", os.O_RDWR)
    m.check()
    # the new size would pass s_maxbytes (2^63 - 1): EFBIG, and nothing moved
    big = os.open("sh-big", os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(big, b"x", 0)
    top = (1 << 63) - 1
    os.ftruncate(big, top - B)
    expect_errno("EFBIG", fallocate, big, FALLOC_FL_INSERT_RANGE, 0, 2 * B)
    assert os.fstat(big).st_size == top - B and os.pread(big, 1, 0) == b"x"
    fallocate(big, FALLOC_FL_INSERT_RANGE, 0, B)
    assert os.fstat(big).st_size == top and os.pread(big, 1, B) == b"x"
    os.close(big)
    os.unlink("sh-big")


def test_splice_and_copy_range():
    """splice(2) both ways, and copy_file_range(2) at offsets no clone can
    take (the VFS falls back to splicing through write_iter): fio's splice
    engine and xfstests generic/095 use the first, cp the second."""
    data = pattern(21, 3 * B + 123)
    src = Model("splice-src")
    src.pwrite(0, data)
    dst = Model("splice-dst")
    r, w = os.pipe()
    off = 0
    while off < len(data):  # file -> pipe -> file, in pipe-sized pieces
        n = os.splice(src.fd, w, min(65536, len(data) - off), offset_src=off)
        assert n > 0, n
        got = 0
        while got < n:
            got += os.splice(r, dst.fd, n - got, offset_dst=off + 7 + got)
        off += n
    os.close(r)
    os.close(w)
    dst.data = bytearray(7) + bytearray(data)
    dst.check()
    cp = Model("copy-dst")
    cp.pwrite(0, pattern(22, 2 * B))
    n = os.copy_file_range(src.fd, cp.fd, 2 * B + 5, offset_src=3, offset_dst=101)
    assert n == 2 * B + 5, n
    cp.data[101:101 + n] = data[3:3 + n]
    cp.check()


def test_fiemap():
    m = Model("fm")
    m.pwrite(0, pattern(5, 4 * B))
    m.pwrite(20 * B, pattern(6, B))
    out = subprocess.run(["xfs_io", "-c", "fiemap -v", "fm"], capture_output=True, text=True).stdout
    lines = [l for l in out.splitlines() if l.strip() and l.strip()[0].isdigit()]
    data = [l for l in lines if "hole" not in l]
    holes = [l for l in lines if "hole" in l]
    assert len(data) == 2 and len(holes) == 1, out


def test_persistence():
    data = pattern(11, 3 * (1 << 20) + 17)
    with open("p", "wb") as f:
        f.write(data)
    gtest.remount()
    with open("p", "rb") as f:
        assert f.read() == data
    gtest.drop_caches()
    with open("p", "rb") as f:
        assert f.read() == data


def test_enospc():
    before = gtest.statfs_free()
    fd = os.open("fill", os.O_WRONLY | os.O_CREAT, 0o644)
    chunk = pattern(2, 1 << 20)
    err = None
    written = 0
    view = chunk
    try:
        while True:
            try:
                n = os.write(fd, view)
            except OSError as e:
                err = e.errno
                break
            written += n
            view = view[n:] or chunk
        os.close(fd)
        assert err == errno.ENOSPC, err
        free = gtest.statfs_free()
        assert free < 1024, f"ENOSPC with {free} blocks free"
        fd = os.open("fill", os.O_WRONLY)
        expect_errno("ENOSPC", os.pwrite, fd, b"x" * B, written + 10 * B)
        os.close(fd)
        assert os.stat("fill").st_size == written, (os.stat("fill").st_size, written)
        with open("fill", "rb") as f:  # what was written is intact: whole chunks, then a prefix
            off = 0
            while off < written:
                piece = f.read(len(chunk))
                assert piece == chunk[:len(piece)], f"mismatch in chunk at {off}"
                off += len(piece)
    finally:
        os.unlink("fill")  # must work on a full filesystem
    assert gtest.statfs_free() == before, (gtest.statfs_free(), before)


if __name__ == "__main__":
    gtest.main(globals())
