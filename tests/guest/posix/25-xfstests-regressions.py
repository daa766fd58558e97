#!/usr/bin/env python3
"""Bugs the xfstests generic quick group found, each reduced to the smallest
sequence that showed it, so `make test` keeps them fixed without xfstests:

  generic/091, 263  fallocate(FALLOC_FL_UNSHARE_RANGE) past EOF without
                    KEEP_SIZE did not extend the file (nor fill its holes)
  generic/313       truncate up kept the old ctime and mtime
  generic/449       a failed ACL update (ENOSPC) changed the mode anyway
  generic/003       a rename after an extending write moved the file's mtime
  generic/092       truncate to the current size kept the blocks
                    preallocated past EOF (fallocate KEEP_SIZE)
  generic/683       fallocate by another user kept the file's suid and
                    sgid bits (and its mtime)

And, when an xfstests checkout is handed in (FERROFS_T_XFSTESTS=/path, as
`make xfstests` does), its own fsx with the options of generic/091 and 263;
fsx switches collapse and insert range on by itself when the filesystem
supports them, and the test checks that it did.
"""
import ctypes
import errno
import os
import stat
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import (FIEMAP_EXTENT_SHARED, FIEMAP_EXTENT_UNWRITTEN, clone, expect_errno,
                    fiemap, pattern)

B = 4096
FALLOC_FL_KEEP_SIZE, FALLOC_FL_ZERO_RANGE, FALLOC_FL_UNSHARE_RANGE = 0x1, 0x10, 0x40
libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]


def fallocate(fd, mode, off, length):
    if libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def test_unshare_extends_like_mode_0():
    # generic/091 and 263: fsx's FALLOC with FALLOC_FL_UNSHARE_RANGE and no
    # KEEP_SIZE, past EOF. The minimal sequence (fsx --replay-ops, reduced):
    # one such call on an empty file left the size at 0.
    fd = os.open("junk", os.O_RDWR | os.O_CREAT, 0o644)
    fallocate(fd, FALLOC_FL_UNSHARE_RANGE, 0x52A68, 0xA756)
    assert os.fstat(fd).st_size == 0x5D1BE, hex(os.fstat(fd).st_size)
    assert os.lseek(fd, 0, os.SEEK_END) == 0x5D1BE
    assert os.pread(fd, 0x5D1BE, 0) == bytes(0x5D1BE)
    ext = fiemap(fd)
    assert ext and all(e[3] & FIEMAP_EXTENT_UNWRITTEN for e in ext), ext   # allocated, unwritten
    # on a reflinked file: the shared blocks get private copies, the data
    # stays, the holes are allocated and the size grows; KEEP_SIZE keeps it
    src = pattern(3, 5 * B)
    a = os.open("a", os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(a, src, 0)
    b = os.open("b", os.O_RDWR | os.O_CREAT, 0o644)
    clone(a, b)
    assert any(e[3] & FIEMAP_EXTENT_SHARED for e in fiemap(b))
    fallocate(b, FALLOC_FL_UNSHARE_RANGE | FALLOC_FL_KEEP_SIZE, 0, 8 * B)
    assert os.fstat(b).st_size == 5 * B
    assert not any(e[3] & FIEMAP_EXTENT_SHARED for e in fiemap(b)), fiemap(b)
    fallocate(b, FALLOC_FL_UNSHARE_RANGE, 2 * B, 6 * B + 5)
    assert os.fstat(b).st_size == 8 * B + 5
    assert os.pread(b, 9 * B, 0) == src + bytes(3 * B + 5)
    assert os.pread(a, 9 * B, 0) == src
    for f in (fd, a, b):
        os.close(f)
    gtest.remount()
    assert os.stat("junk").st_size == 0x5D1BE
    assert os.stat("b").st_size == 8 * B + 5


def test_extending_fallocate_sizes():
    """fallocate(mode 0 or UNSHARE_RANGE) ending past EOF sets the size to
    exactly its end, whatever was allocated, unwritten or freed there before."""
    bad = []
    for pre in ("none", "zero-keep", "falloc-keep", "write-then-truncate"):
        for mode, end in ((0, 0x5C001), (0, 0x5D1BE), (FALLOC_FL_UNSHARE_RANGE, 0x5E000), (0, 0x7A120),
                          (FALLOC_FL_UNSHARE_RANGE, 0x7A120)):
            fd = os.open(f"f-{pre}-{mode:x}-{end:x}", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
            os.pwrite(fd, b"x" * 0x5C000, 0)
            if pre == "zero-keep":
                fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0x5C0BF, 0x20000)
            elif pre == "falloc-keep":
                fallocate(fd, FALLOC_FL_KEEP_SIZE, 0x5C000, 0x20000)
            elif pre == "write-then-truncate":
                os.pwrite(fd, b"y" * 0x20000, 0x5C000)
                os.ftruncate(fd, 0x5C000)
            fallocate(fd, mode, 0x52A68, end - 0x52A68)
            got = os.fstat(fd).st_size
            if got != end:
                bad.append(f"{pre}: fallocate to {end:#x} -> size {got:#x}")
            elif os.pread(fd, end - 0x5C000, 0x5C000) != bytes(end - 0x5C000):
                bad.append(f"{pre}: bytes past the old EOF are not zero")
            os.close(fd)
    assert not bad, "; ".join(bad)


def test_truncate_up_and_down_update_ctime_mtime():
    # generic/313 (src/t_truncate_cmtime.c): truncate(2) and ftruncate(2)
    # that change the size mark ctime and mtime for update (POSIX).
    for how in ("truncate", "ftruncate"):
        for direction, new in (("up", 2 * B), ("down", 10)):
            name = f"{how}-{direction}"
            with open(name, "wb") as f:
                f.write(b"a" * 100)
            before = os.stat(name)
            time.sleep(1.1)
            if how == "truncate":
                os.truncate(name, new)
            else:
                fd = os.open(name, os.O_WRONLY)
                os.ftruncate(fd, new)
                os.close(fd)
            after = os.stat(name)
            assert after.st_size == new
            assert after.st_ctime_ns > before.st_ctime_ns, f"{name}: ctime not updated"
            assert after.st_mtime_ns > before.st_mtime_ns, f"{name}: mtime not updated"
    # and it reaches the media
    want = {n: os.stat(n).st_mtime_ns for n in os.listdir(".")}
    gtest.remount()
    for n, m in want.items():
        assert os.stat(n).st_mtime_ns == m, n
    # a truncate to the same size changes neither (as on XFS and ext4)
    before = os.stat("truncate-up")
    time.sleep(1.1)
    os.truncate("truncate-up", before.st_size)
    after = os.stat("truncate-up")
    assert (after.st_mtime_ns, after.st_ctime_ns) == (before.st_mtime_ns, before.st_ctime_ns)


def test_rename_after_extending_write_keeps_mtime():
    # generic/003: `echo xyz > file1; sleep 1; mv file1 file1_renamed`
    # changed mtime (by nanoseconds): the write's size change was stamped
    # in the engine a little after the VFS inode's mtime, and the rename's
    # refresh took the newer one.
    with open("file1", "w") as f:
        f.write("aaa\n")
    time.sleep(1.1)
    with open("file1", "w") as f:       # O_TRUNC, then an extending write
        f.write("xyz\n")
    before = os.stat("file1")
    time.sleep(1.1)
    os.rename("file1", "file1_renamed")
    after = os.stat("file1_renamed")
    assert after.st_mtime_ns == before.st_mtime_ns, (before.st_mtime_ns, after.st_mtime_ns)
    assert after.st_ctime_ns > before.st_ctime_ns
    gtest.remount()
    assert os.stat("file1_renamed").st_mtime_ns == before.st_mtime_ns


def test_truncate_to_same_size_frees_past_eof():
    # generic/092: `falloc -k 0 10M; pwrite 0 5M; truncate 5M` then fiemap
    # showed the unwritten 5M..10M still there; XFS and ext4 free blocks
    # past EOF on any truncate that does not grow the file.
    M = 1 << 20
    fd = os.open("prealloc", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 10 * M)
    data = pattern(92, 5 * M)
    os.pwrite(fd, data, 0)
    before = os.fstat(fd)
    assert before.st_blocks == 10 * M // 512, before.st_blocks
    time.sleep(0.05)
    os.truncate("prealloc", 5 * M)      # truncate(2): no ATTR_*TIME
    st = os.fstat(fd)
    assert st.st_size == 5 * M and st.st_blocks == 5 * M // 512, (st.st_size, st.st_blocks)
    assert (st.st_mtime_ns, st.st_ctime_ns) == (before.st_mtime_ns, before.st_ctime_ns)
    ext = fiemap(fd)
    assert sum(e[2] for e in ext) == 5 * M and all(e[0] + e[2] <= 5 * M for e in ext), ext
    assert not any(e[3] & FIEMAP_EXTENT_UNWRITTEN for e in ext), ext
    # the second half of the test: preallocate past EOF, grow the size into
    # it: the part past the new EOF stays (only a non-growing truncate trims)
    fallocate(fd, FALLOC_FL_KEEP_SIZE, 5 * M, 5 * M)
    os.ftruncate(fd, 7 * M)
    ext = fiemap(fd)
    assert sum(e[2] for e in ext) == 10 * M, ext
    assert [e[3] & FIEMAP_EXTENT_UNWRITTEN != 0 for e in ext][-1], ext
    # a partial EOF block keeps its block; the ones after it go
    os.ftruncate(fd, 5 * M + 100)
    os.ftruncate(fd, 5 * M + 100)
    assert os.fstat(fd).st_blocks == (5 * M + B) // 512, os.fstat(fd).st_blocks
    assert os.pread(fd, 5 * M + 200, 0) == data + bytes(100)
    gtest.remount()
    fd2 = os.open("prealloc", os.O_RDONLY)
    assert os.fstat(fd2).st_blocks == (5 * M + B) // 512
    assert os.pread(fd2, 5 * M + 200, 0) == data + bytes(100)
    os.close(fd2)


def test_fallocate_drops_suid_sgid_and_moves_mtime():
    # generic/683: fallocate is a modification like a write: an unprivileged
    # caller's fallocate strips S_ISUID and S_ISGID and updates mtime/ctime
    os.mkdir("g683")
    os.chmod("g683", 0o777)
    name = os.path.abspath("g683/a")
    for mode, want in ((0o6666, 0o666), (0o6676, 0o676), (0o6766, 0o766)):
        fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        os.pwrite(fd, b"X" * (192 << 10), 0)
        os.close(fd)
        os.chmod(name, mode)
        before = os.stat(name)
        time.sleep(0.05)
        pid = os.fork()
        if pid == 0:
            try:
                os.setgid(65534)
                os.setuid(65534)
                f = os.open(name, os.O_RDWR)
                fallocate(f, 0, 64 << 10, 64 << 10)
                os._exit(0)
            except BaseException as e:  # noqa: BLE001 - report anything in the child
                print(repr(e), flush=True)
                os._exit(1)
        _, st = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(st) == 0
        after = os.stat(name)
        assert stat.S_IMODE(after.st_mode) == want, (oct(mode), oct(after.st_mode))
        assert after.st_mtime_ns > before.st_mtime_ns and after.st_ctime_ns > before.st_ctime_ns
    gtest.remount()
    assert stat.S_IMODE(os.stat(name).st_mode) == 0o766


def acl_xattr(entries):
    """system.posix_acl_access value: version 2, then (tag, perm, id)."""
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, p, i) for t, p, i in entries)


ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER = 0x01, 0x02, 0x04, 0x10, 0x20
UNDEF = 0xFFFFFFFF


def test_failed_acl_update_keeps_mode():
    # generic/449: fill the filesystem, then set an ACL that cannot be
    # stored. setxattr must fail with ENOSPC and leave mode and ACL alone.
    with open("victim", "wb") as f:
        f.write(b"v")
    os.chmod("victim", 0o700)
    # 600 named users: an ACL of ~4.8 KB, stored outside the xattr record,
    # so it needs a free block; mask r-- makes the mode rwxr-----
    acl = acl_xattr([(ACL_USER_OBJ, 7, UNDEF)] + [(ACL_USER, 4, 1000 + i) for i in range(600)]
                    + [(ACL_GROUP_OBJ, 0, UNDEF), (ACL_MASK, 4, UNDEF), (ACL_OTHER, 0, UNDEF)])
    fd = os.open("filler", os.O_RDWR | os.O_CREAT, 0o644)
    off, step = 0, 256 << 20
    while step >= B:
        try:
            fallocate(fd, 0, off, step)
            off += step
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
            step //= 2
    os.close(fd)
    n = 0
    while True:
        try:
            os.setxattr("filler", f"trusted.fill{n}", b"z" * 5000)
            n += 1
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
            break
    mode0 = os.stat("victim").st_mode
    expect_errno("ENOSPC", os.setxattr, "victim", "system.posix_acl_access", acl)
    assert stat.S_IMODE(os.stat("victim").st_mode) == 0o700, oct(os.stat("victim").st_mode)
    expect_errno("ENODATA", os.getxattr, "victim", "system.posix_acl_access")
    gtest.remount()
    assert os.stat("victim").st_mode == mode0
    # with room again, ACL and mode land together
    os.unlink("filler")
    gtest.remount()   # evict the unlinked filler: its blocks come back
    os.setxattr("victim", "system.posix_acl_access", acl)
    assert stat.S_IMODE(os.stat("victim").st_mode) == 0o740
    gtest.remount()
    assert stat.S_IMODE(os.stat("victim").st_mode) == 0o740
    assert os.getxattr("victim", "system.posix_acl_access") == acl


def test_xfstests_fsx():
    """xfstests' own fsx with the options of generic/091 and 263, when an
    xfstests checkout is available (FERROFS_T_XFSTESTS)."""
    root = os.environ.get("FERROFS_T_XFSTESTS", "")
    fsx = os.path.join(root, "ltp/fsx")
    if not root or not os.access(fsx, os.X_OK):
        print("    (no xfstests checkout: FERROFS_T_XFSTESTS unset; skipped)")
        return
    ops = os.environ.get("FERROFS_T_XFSTESTS_FSX_OPS", "10000")
    # without -q fsx names each fallocate mode it had to switch off
    r = subprocess.run([fsx, "-N", "1", "junk"], capture_output=True, text=True)
    off = [l for l in r.stderr.splitlines() if "does not support" in l and ("COLLAPSE" in l or "INSERT" in l)]
    assert r.returncode == 0 and not off, f"fsx -N 1: exit {r.returncode}; {off or r.stderr[-2000:]}"
    os.unlink("junk")
    for args in (["-N", ops, "-l", "500000", "-r", "4096", "-t", "4096", "-w", "4096", "-Z", "-R", "-W"],
                 ["-N", ops, "-o", "8192", "-l", "500000", "-r", "4096", "-t", "4096", "-w", "4096", "-Z"]):
        for seed in ("1", "2"):
            r = subprocess.run([fsx, "-q", "-S", seed] + args + ["junk"], capture_output=True, text=True)
            assert r.returncode == 0, f"fsx {' '.join(args)} -S {seed}: exit {r.returncode}\n{r.stdout[-3000:]}{r.stderr[-2000:]}"
            os.unlink("junk")


if __name__ == "__main__":
    gtest.main(globals())
