#!/usr/bin/env python3
"""Hostile userspace: invalid ioctl arguments get clean errnos and change
nothing; remap ranges past EOF, overflowing or "negative"; unaligned
dedupe; reflink between ferrofs and tmpfs (EXDEV); a file mapped by two
processes while a third truncates it and reflinks over it (maptrunc.c)."""
import ctypes
import errno
import fcntl
import mmap
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stresslib as S  # noqa: E402  (puts tests/guest on the path)
import gtest  # noqa: E402  (harness: fresh fs per test, fsck at the end)
from fsutil import FICLONE, FICLONERANGE, FIDEDUPERANGE, clone, clone_range, dedupe, expect_errno, mkfile, pattern, read_all

B = 4096
FS_IOC_FIEMAP = 0xC020660B
FS_IOC_FSGETXATTR = 0x801C581F
FS_IOC_FSSETXATTR = 0x401C5820
FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
FIEMAP_MAX_EXTENTS = (2**32 - 1) // 56
libc = ctypes.CDLL(None, use_errno=True)
libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
checks = 0


def ck(cond, msg):
    global checks
    checks += 1
    assert cond, msg


def punch(fd, off, length):
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    if libc.fallocate(fd, 0x02 | 0x01, off, length) != 0:  # PUNCH_HOLE | KEEP_SIZE
        raise OSError(ctypes.get_errno(), "fallocate punch")


def raw_ioctl(fd, req, addr):
    """ioctl with a raw address: returns 'OK' or the errno name."""
    r = libc.ioctl(fd, req, addr)
    return "OK" if r >= 0 else errno.errorcode[ctypes.get_errno()]


def guarded(nbytes_before_guard):
    """A page followed by an inaccessible page; returns (mmap, address of the
    byte nbytes_before_guard before the guard)."""
    m = mmap.mmap(-1, 2 * B)
    base = ctypes.addressof(ctypes.c_char.from_buffer(m))
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    assert libc.mprotect(base + B, B, 0) == 0
    return m, base + B - nbytes_before_guard


def test_fiemap_hostile():
    fd = mkfile("f", pattern(1, 40 * B))
    for i in range(0, 40, 2):  # 20 extents
        os.pwrite(fd, b"x", i * B)
        punch(fd, (i + 1) * B, B)
    # more extents than FIEMAP_MAX_EXTENTS: EINVAL before anything is written
    hdr = struct.pack("QQIIII", 0, 2**64 - 1, 0, 0, 2**32 - 1, 0)
    m, addr = guarded(len(hdr))
    m[B - len(hdr):B] = hdr
    ck(raw_ioctl(fd, FS_IOC_FIEMAP, addr) == "EINVAL", "FIEMAP with fm_extent_count 2^32-1")
    # a legal huge count whose array runs into an unmapped page: EFAULT, no oops
    hdr = struct.pack("QQIIII", 0, 2**64 - 1, 0, 0, FIEMAP_MAX_EXTENTS, 0)
    m[B - len(hdr):B] = hdr
    ck(raw_ioctl(fd, FS_IOC_FIEMAP, addr) == "EFAULT", "FIEMAP extents past the user buffer")
    # the header itself unreadable
    ck(raw_ioctl(fd, FS_IOC_FIEMAP, 8) == "EFAULT", "FIEMAP at address 8")
    # unknown flags: EBADR, and the kernel reports the flags it supports
    buf = bytearray(struct.pack("QQIIII", 0, 2**64 - 1, 0xFFFFFFFF, 0, 4, 0) + bytes(56 * 4))
    try:
        fcntl.ioctl(fd, FS_IOC_FIEMAP, buf)
        ck(False, "FIEMAP with all flags succeeded")
    except OSError as e:
        ck(e.errno == errno.EBADR, f"FIEMAP unknown flags: {S.ename(e.errno)}, want EBADR")
    # start past the largest file (start + length overflowing u64 too): EFBIG
    # (fiemap_prep); past EOF but below it: no extents
    for start, length in ((2**64 - B, 2**64 - 1), (2**63, 2**63)):
        buf = bytearray(struct.pack("QQIIII", start, length, 0, 0, 8, 0) + bytes(56 * 8))
        expect_errno("EFBIG", fcntl.ioctl, fd, FS_IOC_FIEMAP, buf)
    for start, length in ((100 * B, 1), (100 * B, 2**64 - 1), (1 << 44, B), (2**63 - B, 2**64 - 1)):
        buf = bytearray(struct.pack("QQIIII", start, length, 0, 0, 8, 0) + bytes(56 * 8))
        fcntl.ioctl(fd, FS_IOC_FIEMAP, buf)
        ck(struct.unpack_from("I", buf, 20)[0] == 0, f"FIEMAP at {start:#x} found extents past EOF")
    # count 0: only the number of extents
    buf = bytearray(struct.pack("QQIIII", 0, 2**64 - 1, 0, 0, 0, 0))
    fcntl.ioctl(fd, FS_IOC_FIEMAP, buf)
    n = struct.unpack_from("I", buf, 20)[0]  # fm_mapped_extents
    ck(n >= 20, f"FIEMAP count-only: {n} extents")


def test_fssetxattr_junk():
    fd = mkfile("f", b"data")
    before = bytearray(28)
    fcntl.ioctl(fd, FS_IOC_FSGETXATTR, before)
    for xflags, extsize, projid in ((0xFFFFFFFF, 0, 0), (0x80000000, 0, 0), (0x800, 12345, 0),
                                    (0, 0, 0xDEADBEEF), (0x40, 0xFFFFFFFF, 0)):
        junk = struct.pack("IIIII8x", xflags, extsize, 0xFFFFFFFF, projid, 0xFFFFFFFF)
        try:
            fcntl.ioctl(fd, FS_IOC_FSSETXATTR, junk)
            res = "OK"
        except OSError as e:
            res = S.ename(e.errno)
        ck(res in ("OK", "EINVAL", "EOPNOTSUPP", "ENOTSUP"),
           f"FSSETXATTR xflags={xflags:#x} extsize={extsize} projid={projid:#x}: {res}")
        now = bytearray(28)
        fcntl.ioctl(fd, FS_IOC_FSGETXATTR, now)
        got = struct.unpack_from("I", now, 0)[0]
        # a refused request changes nothing
        ck(res == "OK" or now[:4] == before[:4], f"refused FSSETXATTR {xflags:#x} ({res}) left xflags {got:#x}")
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("i", 0))
    ck(raw_ioctl(fd, FS_IOC_FSSETXATTR, 8) == "EFAULT", "FSSETXATTR from address 8")
    ck(raw_ioctl(fd, FS_IOC_FSGETXATTR, 8) == "EFAULT", "FSGETXATTR to address 8")
    ck(raw_ioctl(fd, FS_IOC_SETFLAGS, 8) == "EFAULT", "SETFLAGS from address 8")
    os.pwrite(fd, b"still writable", 0)
    ck(os.pread(fd, 14, 0) == b"still writable", "file not writable after junk FSSETXATTR")


def test_clone_range_hostile():
    data = pattern(2, 16 * B)
    a = mkfile("a", data)
    b = mkfile("b", pattern(3, 16 * B))
    bdata = read_all(b)
    M = 2**64
    cases = [
        ("src past EOF", (32 * B, B, 0), "EINVAL"),
        ("length past EOF from inside", (8 * B, 16 * B, 0), "EINVAL"),
        ("src offset + length overflow", (M - B, 2 * B, 0), "EINVAL"),
        ("'negative' src offset", (M - 4 * B, B, 0), "EINVAL"),
        ("'negative' dest offset", (0, B, M - 4 * B), "EINVAL"),
        ("dest offset + length overflow", (0, 4 * B, M - 2 * B), "EINVAL"),
        ("dest past the maximum file size", (0, B, 2**63 - B), "EFBIG"),
        ("unaligned src offset", (100, B, 0), "EINVAL"),
        ("unaligned dest offset", (0, B, 100), "EINVAL"),
        ("unaligned length inside the file", (0, B + 1, 0), "EINVAL"),
    ]
    for what, (so, ln, do), want in cases:
        try:
            clone_range(a, so, ln, b, do)
            got = "OK"
        except OSError as e:
            got = S.ename(e.errno)
        ok = got == want or (want == "EFBIG" and got == "EINVAL")
        ck(ok, f"FICLONERANGE {what}: got {got}, want {want}")
        ck(read_all(b) == bdata, f"FICLONERANGE {what} changed the destination")
    ck(read_all(a) == data, "hostile FICLONERANGE changed the source")
    # overlapping range within one file
    expect_errno("EINVAL", clone_range, a, 0, 4 * B, a, 2 * B)
    # a directory, a read-only destination, an append-only destination
    dfd = os.open(".", os.O_RDONLY)
    got = None
    try:
        clone(dfd, b)
    except OSError as e:
        got = S.ename(e.errno)
    ck(got in ("EISDIR", "EINVAL"), f"FICLONE from a directory: {got}")
    ro = os.open("b", os.O_RDONLY)
    expect_errno("EBADF", clone, a, ro)
    ap = os.open("b", os.O_WRONLY | os.O_APPEND)
    expect_errno("EBADF", clone, a, ap)
    # immutable destination
    c = mkfile("c", b"c")
    fcntl.ioctl(c, FS_IOC_SETFLAGS, struct.pack("i", 0x10))
    expect_errno("EPERM", clone, a, c)
    fcntl.ioctl(c, FS_IOC_SETFLAGS, struct.pack("i", 0))
    ck(read_all(b) == bdata, "a refused FICLONE changed the destination")
    # bad file descriptors in the argument
    expect_errno("EBADF", clone_range, 9999, 0, B, b, 0)
    ck(raw_ioctl(b, FICLONERANGE, 8) == "EFAULT", "FICLONERANGE from address 8")
    # length 0 at EOF: clones nothing
    clone_range(a, 16 * B, 0, b, 0)
    ck(read_all(b) == bdata, "zero-length FICLONERANGE at EOF changed bytes")


def test_dedupe_hostile():
    data = pattern(4, 16 * B)
    a = mkfile("a", data)
    b = mkfile("b", data)
    # unaligned offsets (a length not reaching EOF is shortened to whole
    # blocks: the VFS passes REMAP_FILE_CAN_SHORTEN and reports the length
    # asked for, so that one is checked by its effect below)
    for so, ln, do in ((100, B, 0), (0, B, 100), (B + 1, B, B + 1)):
        try:
            st, n = dedupe(a, so, ln, b, do)
            res = ("status", st, n)
        except OSError as e:
            res = S.ename(e.errno)
        ck(res == "EINVAL" or (isinstance(res, tuple) and res[1] < 0 and res[1] == -errno.EINVAL),
           f"FIDEDUPERANGE unaligned ({so}, {ln}, {do}): {res}")
    st, n = dedupe(a, 0, B + 7, b, 0)
    ck(st == 0, f"dedupe of B + 7 equal bytes: status {st}")
    ck(read_all(a) == data and read_all(b) == data, "an unaligned dedupe changed bytes")
    # past EOF
    try:
        st, n = dedupe(a, 20 * B, B, b, 0)
        res = ("status", st, n)
    except OSError as e:
        res = S.ename(e.errno)
    ck(res == "EINVAL" or (isinstance(res, tuple) and res[1] == -errno.EINVAL), f"dedupe past EOF: {res}")
    # differing data: FILE_DEDUPE_RANGE_DIFFERS, nothing shared
    os.pwrite(b, b"!", 5 * B)
    st, n = dedupe(a, 0, 8 * B, b, 0)
    ck(st == 1 and n == 0, f"dedupe of differing data: status {st}, {n} bytes")
    # a dest_count so large the argument cannot fit a page
    big = bytearray(struct.pack("QQHHI", 0, B, 0xFFFF, 0, 0) + bytes(64))
    try:
        fcntl.ioctl(a, FIDEDUPERANGE, big)
        res = "OK"
    except OSError as e:
        res = S.ename(e.errno)
    ck(res in ("ENOMEM", "EINVAL", "EFAULT"), f"dedupe with dest_count 65535: {res}")
    ck(read_all(a) == data, "hostile dedupe changed the source")


def test_cross_filesystem():
    data = pattern(5, 8 * B)
    a = mkfile("a", data)
    os.makedirs("/tmp/hostile", exist_ok=True)
    t = os.open("/tmp/hostile/t", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(t, data)
    expect_errno("EXDEV", clone, a, t)     # ferrofs -> tmpfs
    expect_errno("EXDEV", clone, t, a)     # tmpfs -> ferrofs
    expect_errno("EXDEV", clone_range, t, 0, B, a, 0)
    st, n = dedupe(a, 0, B, t, 0)
    ck(st == -errno.EXDEV or st < 0, f"dedupe into tmpfs: status {st}")
    # copy_file_range between filesystems of different types: EXDEV since
    # Linux 5.19 (userspace falls back to read/write); nothing written
    u = os.open("/tmp/hostile/u", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    expect_errno("EXDEV", os.copy_file_range, a, u, 8 * B, 0, 0)
    ck(os.fstat(u).st_size == 0, "a refused copy_file_range wrote to tmpfs")
    ck(read_all(a) == data, "cross-fs remap changed the ferrofs file")
    os.close(t)
    os.close(u)


def test_map_truncate_reflink_race():
    exe = S.build_c("maptrunc")
    r = subprocess.run([exe, os.getcwd(), str(S.knob("RACE_SECONDS", 10, 60))], capture_output=True, text=True,
                       timeout=600)
    print(r.stdout.strip())
    ck(r.returncode == 0, f"maptrunc exited {r.returncode}: {r.stdout}{r.stderr}")


if __name__ == "__main__":
    k = S.Kmsg()
    try:
        gtest.main(globals())
    finally:
        k.check("hostile userspace")
        S.summary("hostile", checks=checks)
