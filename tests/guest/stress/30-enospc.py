#!/usr/bin/env python3
"""A full device: fill to ENOSPC with writes; with reflinks and then CoW
writes that need space that is not there (ENOSPC, originals untouched);
with mmap stores (SIGBUS from the fault); with fallocate and a big xattr.
fsck clean afterwards, and deleting everything gives back every block:
statfs f_bfree returns to its value before the test.

Each scenario runs on a fresh small filesystem (FERROFS_T_STRESS_FS_MIB,
64 MiB by default) so filling it is quick under TCG."""
import errno
import mmap
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stresslib as S
from fsutil import clone, pattern

B = 4096
MIB = 1 << 20
counts = {"scenarios": 0, "enospc": 0, "sigbus": 0}


def fresh():
    os.chdir("/")
    if os.path.ismount(S.MNT):
        S.sh(f"umount {S.MNT}")
    S.sh(f"mkfs.ferrofs -f -q -s {S.knob('FS_MIB', 64)}m {S.DEV}")
    S.sh(f"mount -t ferrofs -o dax {S.DEV} {S.MNT}")
    os.chdir(S.MNT)
    return os.statvfs(S.MNT).f_bfree


def fill(name, chunk=MIB):
    """Append until ENOSPC; returns bytes written. The error must be ENOSPC."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    done = 0
    data = b"F" * chunk
    try:
        while True:
            try:
                n = os.write(fd, data)
            except OSError as e:
                assert e.errno == errno.ENOSPC, f"filling {name}: {S.ename(e.errno)}, want ENOSPC"
                counts["enospc"] += 1
                break
            done += n
            if n < chunk:
                chunk = max(B, chunk // 2)  # short write: the device is almost full
                data = b"F" * chunk
    finally:
        os.close(fd)
    return done


def fill_all():
    """Fill with big writes, then single blocks, until nothing is left."""
    total = fill("filler-big")
    total += fill("filler-small", B)
    return total


def check_and_delete(start, keep_mounted=True):
    """fsck clean; remove everything; every block back."""
    os.chdir("/")
    S.sh(f"umount {S.MNT}")
    S.fsck_clean()
    S.sh(f"mount -t ferrofs -o dax {S.DEV} {S.MNT}")
    for n in os.listdir(S.MNT):
        os.unlink(os.path.join(S.MNT, n))
    now = os.statvfs(S.MNT).f_bfree
    assert now == start, f"after deleting everything f_bfree is {now}, it was {start} before the test"
    S.sh(f"umount {S.MNT}")
    S.fsck_clean()
    counts["scenarios"] += 1


def store_in_child(path, off, length):
    """mmap the file shared and store `length` bytes at `off` in a child:
    'ok' or the signal that killed it."""
    pid = os.fork()
    if pid == 0:
        fd = os.open(path, os.O_RDWR)
        m = mmap.mmap(fd, off + length)
        m[off:off + length] = b"M" * length
        m.flush()
        os._exit(0)
    _, st = os.waitpid(pid, 0)
    if os.WIFSIGNALED(st):
        return signal.Signals(os.WTERMSIG(st)).name
    return "ok" if os.WEXITSTATUS(st) == 0 else f"exit {os.WEXITSTATUS(st)}"


def scenario_writes():
    start = fresh()
    n = fill_all()
    st = os.statvfs(S.MNT)
    assert st.f_bavail == 0 or st.f_bavail * B < MIB, f"ENOSPC with {st.f_bavail} blocks available"
    # the data that was written is all there
    got = 0
    with open("filler-big", "rb") as f:
        while True:
            b = f.read(MIB)
            if not b:
                break
            assert b == b"F" * len(b), "filler data changed"
            got += len(b)
    assert got + os.path.getsize("filler-small") == n, (got, n)
    # small operations on a full fs fail cleanly or succeed
    for fn, args in ((os.mkdir, ("d",)), (os.symlink, ("x" * 300, "longlink"))):
        try:
            fn(*args)
        except OSError as e:
            assert e.errno == errno.ENOSPC, f"{fn.__name__} on a full fs: {S.ename(e.errno)}"
    if os.path.isdir("d"):
        os.rmdir("d")
    print(f"writes: filled {n >> 20} MiB")
    check_and_delete(start)


def scenario_reflink_cow():
    start = fresh()
    st = os.statvfs(S.MNT)
    size = (st.f_bavail * B * 2 // 5) // MIB * MIB
    orig = pattern(7, size)
    with open("a", "wb") as f:
        f.write(orig)
    fa = os.open("a", os.O_RDONLY)
    fb = os.open("b", os.O_RDWR | os.O_CREAT, 0o644)
    free0 = os.statvfs(S.MNT).f_bfree
    clone(fa, fb)
    used = free0 - os.statvfs(S.MNT).f_bfree
    # a few btree nodes (the first refcount records), never the data
    assert used <= 8, f"FICLONE of {size >> 20} MiB used {used} blocks"
    fill_all()
    # CoW through write(2): the new copy needs a block that is not there
    want_b = bytearray(orig)
    for off in (0, size // 2 + 123, size - B):
        try:
            n = os.pwrite(fb, b"W" * B, off)
            want_b[off:off + n] = b"W" * n  # a block freed by an earlier ENOSPC may be reused
        except OSError as e:
            assert e.errno == errno.ENOSPC, f"CoW pwrite: {S.ename(e.errno)}, want ENOSPC"
            counts["enospc"] += 1
    # CoW through an mmap store: the fault cannot allocate -> SIGBUS
    r = store_in_child("b", 3 * B, 16)
    assert r in ("SIGBUS", "ok"), f"mmap store needing a CoW block on a full fs: {r}"
    if r == "SIGBUS":
        counts["sigbus"] += 1
    else:
        want_b[3 * B:3 * B + 16] = b"M" * 16
    # the originals: a is untouched, b has exactly what succeeded
    assert os.pread(fa, size + 1, 0) == orig, "the reflink source changed"
    assert os.pread(fb, size + 1, 0) == bytes(want_b), "the clone has bytes that failed to be written"
    assert counts["enospc"] > 0
    # free some space: CoW works again
    os.unlink("filler-big")
    os.pwrite(fb, b"Z" * B, 5 * B)
    want_b[5 * B:6 * B] = b"Z" * B
    assert store_in_child("b", 9 * B, 8) == "ok"
    want_b[9 * B:9 * B + 8] = b"M" * 8
    assert os.pread(fb, size + 1, 0) == bytes(want_b)
    assert os.pread(fa, size + 1, 0) == orig
    os.close(fa)
    os.close(fb)
    print(f"reflink+CoW: {size >> 20} MiB source, clone CoW on a full fs: write ENOSPC, mmap store {r}")
    check_and_delete(start)


def scenario_mmap_holes():
    start = fresh()
    fill_all()
    fd = os.open("sparse", os.O_RDWR | os.O_CREAT, 0o644)
    os.ftruncate(fd, 8 * MIB)
    os.close(fd)
    r = store_in_child("sparse", 4 * MIB, 1)
    assert r == "SIGBUS", f"mmap store into a hole of a full fs: {r}, want SIGBUS"
    counts["sigbus"] += 1
    with open("sparse", "rb") as f:
        assert f.read() == bytes(8 * MIB), "a failed mmap store left data behind"
    # fallocate and a big external xattr need blocks too
    fd = os.open("sparse", os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, 4 * MIB)
        raise AssertionError("fallocate on a full fs succeeded")
    except OSError as e:
        assert e.errno == errno.ENOSPC, f"fallocate: {S.ename(e.errno)}"
        counts["enospc"] += 1
    os.close(fd)
    try:
        os.setxattr("sparse", "user.big", b"x" * 60000)
        ok = True
    except OSError as e:
        assert e.errno == errno.ENOSPC, f"setxattr 60000 bytes on a full fs: {S.ename(e.errno)}"
        counts["enospc"] += 1
        ok = False
    print(f"mmap holes: store SIGBUS, fallocate ENOSPC, big xattr {'fit (metadata reserve)' if ok else 'ENOSPC'}")
    check_and_delete(start)


def main():
    k = S.Kmsg()
    t0 = time.time()
    rounds = S.knob("ENOSPC_ROUNDS", 1, 3)
    for _ in range(rounds):
        for sc in (scenario_writes, scenario_reflink_cow, scenario_mmap_holes):
            sc()
            k.check(sc.__name__)
    S.sh(f"mkfs.ferrofs -f -q {S.DEV}")
    print(f"enospc: {counts['scenarios']} scenarios, {counts['enospc']} ENOSPC, {counts['sigbus']} SIGBUS "
          f"in {time.time() - t0:.0f}s")
    S.summary("enospc", scenarios=counts["scenarios"], enospc=counts["enospc"], sigbus=counts["sigbus"], failed=0)


if __name__ == "__main__":
    main()
