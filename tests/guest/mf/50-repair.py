#!/usr/bin/env python3
"""Finding and repairing damaged files after real poison (issue 18).

`ferrofs-du --damaged` on the mounted device lists every quarantined block
with each owner's path, byte range and sharing; fsck.ferrofs -n prints the
same lines. A punch or a write covering the whole damaged block repairs a
file (reads return the new data, mmap loads no longer SIGBUS); a write
covering it in part still fails with EIO; the bad block stays quarantined,
counted and out of the free pool, and the report drops each repaired file.
All of it survives a remount."""
import mmap
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import clone, expect_errno, fiemap, pattern

B = 4096
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2


def dbg(name):
    dev = os.path.basename(gtest.DEV)
    with open(f"/sys/kernel/debug/ferrofs/{dev}/{name}") as f:
        return int(f.read(), 0)  # base_pfn is hex


def damaged():
    r = subprocess.run(["ferrofs-du", "--damaged", gtest.DEV], capture_output=True, text=True)
    assert r.returncode in (0, 1), (r.returncode, r.stdout, r.stderr)
    return [l for l in r.stdout.splitlines() if l.startswith("damaged ")]


def poison(path, page):
    fd = os.open(path, os.O_RDONLY)
    (logical, physical, _, _), = [e for e in fiemap(fd) if e[0] <= page * B < e[0] + e[2]]
    os.close(fd)
    pblk = (physical + page * B - logical) // B
    with open("/sys/kernel/debug/hwpoison/corrupt-pfn", "w") as f:
        f.write(str(dbg("base_pfn") + pblk))
    return pblk


def punch(fd, off, n):
    import ctypes
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    if libc.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, ctypes.c_long(off), ctypes.c_long(n)):
        raise OSError(ctypes.get_errno(), "fallocate")


def read(name, off, n):
    fd = os.open(name, os.O_RDONLY)
    try:
        return os.pread(fd, n, off)
    finally:
        os.close(fd)


def test_report_and_repair():
    here = "/" + os.path.basename(os.getcwd())
    data = pattern(31, 4 * B)
    fd = os.open("src", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, data)
    os.fsync(fd)
    for n in ("clone1", "clone2"):
        d = os.open(n, os.O_RDWR | os.O_CREAT, 0o644)
        clone(fd, d)
        os.close(d)
    os.close(fd)
    solo = os.open("solo", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(solo, data)
    os.fsync(solo)
    os.close(solo)
    assert damaged() == [], "damage before any poison"
    bad = dbg("poisoned_blocks")
    shared = poison("src", 1)
    lone = poison("solo", 2)
    assert dbg("poisoned_blocks") == bad + 2
    share2 = "(shared with 2 other files)"
    want = sorted([
        f"damaged block {shared}: {here}/clone1 bytes 4096-8191 {share2}",
        f"damaged block {shared}: {here}/clone2 bytes 4096-8191 {share2}",
        f"damaged block {shared}: {here}/src bytes 4096-8191 {share2}",
        f"damaged block {lone}: {here}/solo bytes 8192-12287 (not shared)",
    ])
    assert sorted(damaged()) == want, damaged()

    free = os.statvfs(".").f_bfree
    # src: punch the damaged block out
    fd = os.open("src", os.O_RDWR)
    punch(fd, B, B)
    os.close(fd)
    assert read("src", B, B) == bytes(B)
    # clone1: overwrite the damaged block whole
    new = pattern(32, B)
    fd = os.open("clone1", os.O_RDWR)
    expect_errno("EIO", os.pwrite, fd, b"partial", B + 10)  # part of it: still lost
    assert os.pwrite(fd, new, B) == B
    os.close(fd)
    assert read("clone1", 0, 4 * B) == data[:B] + new + data[2 * B:]
    fd = os.open("clone1", os.O_RDONLY)
    m = mmap.mmap(fd, 4 * B, prot=mmap.PROT_READ)
    assert m[B:2 * B] == new, "mapped load after repair"
    m.close()
    os.close(fd)
    # solo: a write across the damaged block and into its neighbours
    fd = os.open("solo", os.O_RDWR)
    patch = pattern(33, B + 200)
    assert os.pwrite(fd, patch, 2 * B - 100) == len(patch)
    os.close(fd)
    assert read("solo", 0, 4 * B) == data[:2 * B - 100] + patch + data[3 * B + 100:]
    # clone2 still lost its page, and is now its only owner
    expect_errno("EIO", read, "clone2", B, B)
    assert sorted(damaged()) == sorted([
        f"damaged block {shared}: {here}/clone2 bytes 4096-8191 (not shared)",
        f"damaged block {lone}: no file owns it (kept out of use)",
    ]), damaged()
    # the bad blocks stay quarantined, counted, and out of the free pool:
    # two blocks were allocated for the new data, none came back
    assert dbg("poisoned_blocks") == bad + 2
    assert os.statvfs(".").f_bfree == free - 2, (free, os.statvfs(".").f_bfree)

    gtest.remount()
    assert dbg("poisoned_blocks") == bad + 2
    assert read("src", B, B) == bytes(B)
    assert read("clone1", B, B) == new
    assert read("solo", 0, 4 * B) == data[:2 * B - 100] + patch + data[3 * B + 100:]
    expect_errno("EIO", read, "clone2", B, B)
    rc, out = gtest.fsck_now()
    assert rc == 0 and f"{bad + 2} blocks quarantined" in out, (rc, out)
    assert f"damaged block {shared}: {here}/clone2 bytes 4096-8191 (not shared)" in out, out
    assert f"damaged block {lone}: no file owns it (kept out of use)" in out, out


if __name__ == "__main__":
    gtest.main(globals())
