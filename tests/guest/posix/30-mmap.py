#!/usr/bin/env python3
"""mmap on DAX: loads and stores go to pmem; sharing between processes,
SIGBUS after truncate, MAP_SYNC, MAP_PRIVATE, 2 MiB PMD faults."""
import fcntl
import mmap
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import pattern

B = 4096
MAP_SHARED_VALIDATE, MAP_SYNC = 0x03, 0x80000
FICLONE = 0x40049409


def mkfile(name, size, data=None):
    fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    if data is not None:
        os.write(fd, data)
    os.ftruncate(fd, size)
    return fd


def test_store_then_read():
    fd = mkfile("f", 3 * B)
    m = mmap.mmap(fd, 3 * B)
    data = pattern(1, 3 * B)
    m[:] = data
    assert os.pread(fd, 3 * B, 0) == data
    os.pwrite(fd, b"written", B + 5)
    assert m[B + 5:B + 12] == b"written"
    m.flush()
    m.close()
    os.close(fd)
    gtest.remount()
    with open("f", "rb") as f:
        got = f.read()
    assert got == data[:B + 5] + b"written" + data[B + 12:]


def test_two_processes_share():
    fd = mkfile("s", B)
    m = mmap.mmap(fd, B)
    r, w = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:
        c = mmap.mmap(fd, B)
        os.read(r, 1)
        ok = c[0:5] == b"hello"
        c[100:105] = b"world"
        os.write(w2, b"1" if ok else b"0")
        os._exit(0)
    m[0:5] = b"hello"
    os.write(w, b"x")
    assert os.read(r2, 1) == b"1", "child did not see the parent's store"
    os.waitpid(pid, 0)
    assert m[100:105] == b"world", "parent did not see the child's store"


def child_status(fn):
    pid = os.fork()
    if pid == 0:
        try:
            fn()
        finally:
            os._exit(0)
    _, st = os.waitpid(pid, 0)
    return st


def test_sigbus_after_truncate():
    fd = mkfile("t", 4 * B, pattern(2, 4 * B))
    m = mmap.mmap(fd, 4 * B)
    assert m[3 * B] == pattern(2, 4 * B)[3 * B]
    os.ftruncate(fd, B)
    st = child_status(lambda: m[3 * B])
    assert os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGBUS, st
    st = child_status(lambda: m.__setitem__(2 * B, 1))
    assert os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGBUS, st
    assert m[0:10] == pattern(2, 4 * B)[0:10]  # below the new EOF: still there
    os.ftruncate(fd, 4 * B)  # grown again: zeroes, not the old bytes
    assert m[3 * B:3 * B + 100] == bytes(100)


def test_map_sync():
    fd = mkfile("ms", 2 * B)
    m = mmap.mmap(fd, 2 * B, flags=MAP_SHARED_VALIDATE | MAP_SYNC)
    m[10:20] = b"0123456789"
    assert os.pread(fd, 10, 10) == b"0123456789"
    m.close()


def test_map_private():
    fd = mkfile("p", B, pattern(3, B))
    m = mmap.mmap(fd, B, flags=mmap.MAP_PRIVATE)
    m[0:4] = b"priv"
    assert os.pread(fd, 4, 0) == pattern(3, B)[:4]
    assert m[0:4] == b"priv"


def stat(name):
    """A ferrofs debugfs counter of this mount (smaps cannot see DAX PMDs:
    devmap PMDs have no normal page, so FilePmdMapped stays 0 on XFS too)."""
    dev = os.path.basename(gtest.DEV)
    with open(f"/sys/kernel/debug/ferrofs/{dev}/{name}") as f:
        return int(f.read())


def test_pmd_fault():
    size = 8 << 20
    fd = mkfile("huge", size)
    m = mmap.mmap(fd, size)
    before, fb = stat("pmd_faults"), stat("pmd_fallbacks")
    for off in range(0, size, 1 << 20):  # 8 stores: 4 PMD faults (2 writes each)
        m[off] = 0x5A
    got = stat("pmd_faults") - before
    assert got >= 4, f"{got} PMD faults (fallbacks {stat('pmd_fallbacks') - fb}) for 4 aligned 2 MiB ranges"
    assert os.pread(fd, 1, 3 << 20) == b"\x5a"
    m.close()
    # a read fault of a written, aligned extent maps a PMD too
    m = mmap.mmap(fd, size, prot=mmap.PROT_READ)
    before = stat("pmd_faults")
    assert m[5 << 20] == 0x5A
    assert stat("pmd_faults") - before == 1
    m.close()


def test_pmd_fallback_counted():
    # a PMD read fault over reflinked (shared) blocks never maps a PMD:
    # fsdax falls back to a 4 KiB fault, and both are counted. A read fault
    # taken under the per-VMA lock is retried under mmap_lock (no
    # ->map_pages: vmf_can_call_fault), so the PMD attempt, and its
    # fallback, may happen twice for the one 4 KiB fault.
    size = 4 << 20
    src = mkfile("src", size, pattern(9, size))
    dst = os.open("dst", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    fcntl.ioctl(dst, FICLONE, src)
    m = mmap.mmap(dst, size, prot=mmap.PROT_READ)
    fb, pte, pmd = stat("pmd_fallbacks"), stat("pte_faults"), stat("pmd_faults")
    off = (2 << 20) + 4096
    assert m[off] == pattern(9, size)[off]
    got = (stat("pmd_fallbacks") - fb, stat("pte_faults") - pte, stat("pmd_faults") - pmd)
    assert got[0] in (1, 2) and got[1:] == (1, 0), \
        f"(fallbacks, 4 KiB faults, PMD faults) = {got}, want (1 or 2, 1, 0)"
    m.close()


def test_msync_persistence():
    fd = mkfile("pers", 16 * B)
    m = mmap.mmap(fd, 16 * B)
    data = pattern(4, 16 * B)
    m[:] = data
    m.flush()
    m.close()
    os.close(fd)
    gtest.remount()
    with open("pers", "rb") as f:
        assert f.read() == data


if __name__ == "__main__":
    gtest.main(globals())
