#!/usr/bin/env python3
"""The engine lock and the per-inode extent cache (issue 17), through the
debugfs counters /sys/kernel/debug/ferrofs/<dev>/locks/<class>_{shared,
exclusive} and map_cache_hits:

- stat of a cached inode, 4 KiB preads and read faults on a cached written
  extent take no exclusive acquisition at all, and once the extents are in
  the inode's cache not even a shared one;
- an allocating write to another file leaves that cache valid;
- reflink, punch and freeing an unlinked file take the exclusive lock once
  per 8 MiB step, not once for the whole range, and punch and freeing step
  over holes (a file with a block at 15 TiB is not two million steps);
- every operation that moves, frees or shares the cached blocks (punch,
  truncate, reflink, collapse) invalidates it: reads see the new state, and
  an overwrite of a block that became shared copies it (the reflinked copy
  keeps the old bytes), through write() and through a mapping."""
import mmap
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import gtest
from fsutil import (FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FIEMAP_FLAG_SYNC, clone,
                    clone_range, fallocate, fiemap, mkfile, pattern)

BS = 4096
DBG = f"/sys/kernel/debug/ferrofs/{os.path.basename(gtest.DEV)}"


def counters():
    c = {}
    for n in os.listdir(f"{DBG}/locks"):
        with open(f"{DBG}/locks/{n}") as f:
            c[n] = int(f.read())
    with open(f"{DBG}/map_cache_hits") as f:
        c["map_cache_hits"] = int(f.read())
    return c


def delta(a, b):
    return {k: b[k] - a[k] for k in b if b[k] != a[k]}


def settle():
    """Write back dirty inodes (the times a first read or the writes
    updated), so that no writeback lands inside a measured window."""
    os.sync()


def written_file(name, nblocks, seed):
    data = pattern(seed, nblocks * BS)
    fd = mkfile(name, data)
    os.fsync(fd)
    return fd, data


def test_counters_exist():
    classes = sorted(n.rsplit("_", 1)[0] for n in os.listdir(f"{DBG}/locks") if n.endswith("_shared"))
    assert {"map", "alloc", "inode", "lookup", "evict", "remap"} <= set(classes), classes


def test_cached_reads_take_no_exclusive_lock():
    fd, data = written_file("f", 1024, 1)  # 4 MiB
    next = len(fiemap(fd, flags=FIEMAP_FLAG_SYNC))
    # warm up: every extent looked up once, the first read's atime update
    # written back
    for off in range(0, len(data), 64 * BS):
        assert os.pread(fd, BS, off) == data[off:off + BS]
    os.stat("f")
    settle()
    a = counters()
    rnd = random.Random(7)
    for _ in range(200):
        st = os.stat("f")
        assert st.st_size == len(data)
    for _ in range(200):
        off = rnd.randrange(1024) * BS
        assert os.pread(fd, BS, off) == data[off:off + BS]
    m = mmap.mmap(fd, len(data), mmap.MAP_SHARED, mmap.PROT_READ)
    for p in range(0, 1024, 16):  # 64 read faults
        assert m[p * BS:p * BS + 8] == data[p * BS:p * BS + 8]
    m.close()
    d = delta(a, counters())
    print(f"    {next} extent(s); counters moved: {d}")
    excl = {k: v for k, v in d.items() if k.endswith("_exclusive")}
    assert not excl, f"exclusive acquisitions during stat/pread/read faults: {excl}"
    assert d.get("inode_shared", 0) == 0 and d.get("lookup_shared", 0) == 0, f"stat went to the engine: {d}"
    assert d.get("map_cache_hits", 0) >= 264, f"expected >= 264 cache hits (200 preads, 64 faults): {d}"
    if next <= 4:  # the cache holds 4 runs per inode
        assert d.get("map_shared", 0) == 0, f"{next} extents, all cached, yet the engine was asked: {d}"


def test_allocating_elsewhere_keeps_the_cache():
    fd, data = written_file("cached", 256, 2)
    assert os.pread(fd, BS, 0) == data[:BS]
    settle()
    other = os.open("other", os.O_RDWR | os.O_CREAT, 0o644)
    a = counters()
    os.pwrite(other, b"x" * (64 * BS), 0)  # allocates: Alloc takes it exclusive
    b = counters()
    assert b["alloc_exclusive"] > a["alloc_exclusive"], delta(a, b)
    for i in range(0, 256, 8):
        assert os.pread(fd, BS, i * BS) == data[i * BS:(i + 1) * BS]
    d = delta(b, counters())
    assert d.get("map_shared", 0) == 0, f"an allocation elsewhere invalidated the cache: {d}"
    assert d.get("map_cache_hits", 0) == 32, d
    os.close(other)


def test_punch_truncate_collapse_invalidate():
    fd, data = written_file("p", 64, 3)
    assert os.pread(fd, 64 * BS, 0) == data  # cached
    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 5 * BS, BS)
    want = bytearray(data)
    want[5 * BS:6 * BS] = bytes(BS)
    assert os.pread(fd, 64 * BS, 0) == want, "read after punch saw stale blocks"
    fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 8 * BS, 4 * BS)
    del want[8 * BS:12 * BS]
    assert os.pread(fd, 64 * BS, 0) == want, "read after collapse saw the old map"
    os.ftruncate(fd, 10 * BS)
    os.ftruncate(fd, 20 * BS)
    want = want[:10 * BS] + bytes(10 * BS)
    assert os.pread(fd, 64 * BS, 0) == want, "read after truncate down/up saw stale blocks"


def test_overwrite_after_reflink_copies():
    fd, data = written_file("src", 32, 4)
    # cache the file's run, then share its blocks with a clone
    assert os.pread(fd, 32 * BS, 0) == data
    dst = os.open("dst", os.O_RDWR | os.O_CREAT, 0o644)
    clone(fd, dst)
    a = counters()
    os.pwrite(fd, b"N" * BS, 3 * BS)  # must be a CoW, not an in-place store
    # (write(2) copies the CoW unit around the block first, an unshare:
    # "space"; a block left shared would be copied by iomap: "alloc")
    c = counters()
    assert c["alloc_exclusive"] + c["space_exclusive"] > a["alloc_exclusive"] + a["space_exclusive"], \
        "overwrite of a shared block did not allocate"
    assert os.pread(dst, 32 * BS, 0) == data, "the clone changed: the overwrite went in place"
    # the same through a write fault on a mapping made before the reflink
    m = mmap.mmap(fd, 32 * BS, mmap.MAP_SHARED)
    assert m[7 * BS:8 * BS] == data[7 * BS:8 * BS]
    d2 = os.open("dst2", os.O_RDWR | os.O_CREAT, 0o644)
    clone_range(fd, 0, 32 * BS, d2, 0)
    m[7 * BS:7 * BS + 4] = b"MMAP"
    m.flush()
    m.close()
    got = os.pread(d2, 32 * BS, 0)
    want = bytearray(data)
    want[3 * BS:4 * BS] = b"N" * BS
    assert got == want, "the second clone changed after a store through the mapping"
    mine = os.pread(fd, 32 * BS, 0)
    assert mine[7 * BS:7 * BS + 4] == b"MMAP" and mine[3 * BS:4 * BS] == b"N" * BS
    for f in (dst, d2):
        os.close(f)


def test_long_operations_release_the_lock_between_steps():
    """32 MiB = 8192 blocks: reflink, punch and freeing the unlinked file
    each take the exclusive lock once per 2048-block (8 MiB) step."""
    n = 8192
    fd, data = written_file("big", n, 5)
    dst = os.open("big.clone", os.O_RDWR | os.O_CREAT, 0o644)
    a = counters()
    clone(fd, dst)
    d = delta(a, counters())
    assert d.get("remap_exclusive") == n // 2048, f"reflink of {n} blocks: {d}"
    for off in (0, 2047 * BS, 2048 * BS, (n - 1) * BS):
        assert os.pread(dst, BS, off) == data[off:off + BS], f"clone differs at {off}"
    a = counters()
    fallocate(dst, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, n * BS)
    d = delta(a, counters())
    assert d.get("space_exclusive") == n // 2048, f"punch of {n} blocks: {d}"
    assert os.pread(dst, BS, 5000 * BS) == bytes(BS)
    os.close(dst)
    os.close(fd)
    a = counters()
    os.unlink("big")
    gtest.drop_caches()  # evicts the unlinked inode
    d = delta(a, counters())
    # 4 punch steps and the evict itself
    assert d.get("evict_exclusive") == n // 2048 + 1, f"freeing {n} blocks: {d}"



def test_freeing_skips_holes():
    """A block at 0 and one at 15 TiB: a punch of everything after block 0
    is one step, freeing the unlinked file two (one per mapped block) and
    the evict; stepping over the 2^32-block hole in 8 MiB steps would take
    about two million exclusive sections."""
    far = 15 << 40
    fd = os.open("sparse", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    os.pwrite(fd, b"a" * BS, 0)
    os.pwrite(fd, b"z" * BS, far)
    a = counters()
    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, BS, far)
    d = delta(a, counters())
    assert d.get("space_exclusive") == 1, f"punch over a 15 TiB hole: {d}"
    assert os.pread(fd, BS, far) == bytes(BS) and os.pread(fd, BS, 0) == b"a" * BS
    os.pwrite(fd, b"z" * BS, far)
    os.close(fd)
    a = counters()
    os.unlink("sparse")
    gtest.drop_caches()
    d = delta(a, counters())
    assert d.get("evict_exclusive") == 3, f"freeing a sparse file: {d}"

if __name__ == "__main__":
    gtest.main(globals())
