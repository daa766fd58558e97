#!/usr/bin/env python3
"""The per-PFN rmap at scale: one block with more mapping owners than the
old per-block vector could hold (it stopped at ~262k).

A file of N pages that are all reflinks of one block (FICLONERANGE of the
file onto itself, doubling), mapped MAP_SHARED whole by one process that
read-faults every page and checks its bytes. Each fault of a shared block
records (inode, page) in the in-memory rmap: debugfs must show all N owners
of the one block and `rmap_unrecorded` 0. Then the block is poisoned (a
scrub: hwpoison's corrupt-pfn, no mapper raises it): the whole-file mapper
(late kill) must get SIGBUS BUS_MCEERR_AR at the page it touches next, a
page past 262144; an early-kill mapper of that page gets BUS_MCEERR_AO at
once; reads of any page fail with EIO; the block is quarantined once; dmesg
counts N owner pages; fsck stays clean; the module unloads (the runner's
rmmod).

FERROFS_T_MF_OWNERS: the number of owners, 30000 by default (about a
minute under TCG, for `make test`); FERROFS_T_STRESS_LONG=1 makes it 300000,
past the old limit, which takes 11-12 minutes under TCG (3.5 min of clones,
2 of faults, half a minute of memory failure; figures in
Documentation/memory-failure.md): scripts/stress (`make stress`) runs the mf
suite that way, and by hand
  FERROFS_T_MF_OWNERS=300000 FERROFS_T_TEST_TIMEOUT=1800 \
    scripts/vm-run --pmem 2 --timeout 2400 -- tests/guest/run mf"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import clone_range, expect_errno, kernel_log, pattern
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mflib import BUS_MCEERR_AO, BUS_MCEERR_AR, build_victim, dbg, finish, inject_pfn, spawn, with_cleanup  # noqa: E402

B = 4096
N = int(os.environ.get("FERROFS_T_MF_OWNERS",
                       "300000" if os.environ.get("FERROFS_T_STRESS_LONG") == "1" else "30000"))
GO = "/tmp/ferrofs-go"


def rmap_header():
    """(shared pages, owners) from the debugfs rmap file's header."""
    dev = os.path.basename(gtest.DEV)
    with open(f"/sys/kernel/debug/ferrofs/{dev}/rmap") as f:
        head = f.readline()
    m = re.match(r"# shared pages (\d+) owners (\d+) bytes (\d+)", head)
    assert m, head
    return int(m.group(1)), int(m.group(2))


def test_rmap_many_owners_of_one_block():
    build_victim()
    log0 = kernel_log()  # judge only what this test logs
    os.environ["VICTIM_WAIT"] = "900"
    if os.path.exists(GO):
        os.unlink(GO)
    data = pattern(17, B)
    t0 = time.monotonic()
    fd = os.open("big", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, data)
    os.fsync(fd)
    n = 1
    while n < N:  # [0, k) onto [n, n+k): one block, ever more owners
        k = min(n, N - n)
        clone_range(fd, 0, k * B, fd, n * B)
        n += k
    t_clone = time.monotonic() - t0
    assert os.fstat(fd).st_size == N * B
    for p in (0, 1, N // 2, 262143, 262144, N - 1):
        if p < N:
            assert os.pread(fd, B, p * B) == data, f"page {p} of the reflinked file reads wrong"
    ino = os.fstat(fd).st_ino
    os.close(fd)
    base_unrec = dbg("rmap_unrecorded")
    last = N - 1
    t1 = time.monotonic()
    whole = spawn("big", last, "all", N * B)
    t_fault = time.monotonic() - t1
    print(f"{N} owners: clones {t_clone:.1f}s, {N} read faults + compare {t_fault:.1f}s", flush=True)
    assert N > 262144 or os.environ.get("FERROFS_T_STRESS_LONG") != "1", "the long run must pass 262144 owners"
    pages, owners = rmap_header()
    assert dbg("rmap_unrecorded") == base_unrec, (
        f"{dbg('rmap_unrecorded') - base_unrec} of {N} owners not recorded in the in-memory rmap")
    assert (pages, owners) == (1, N), f"debugfs rmap: {pages} shared pages, {owners} owners; want 1 and {N}"
    t2 = time.monotonic()
    n_listed, idx = rmap_listing()
    t_list = time.monotonic() - t2
    assert n_listed == N and idx == set(range(N)), (
        f"debugfs rmap lists {n_listed} owners of the block, {len(idx)} distinct pages; want {N}")
    early = spawn("big", last, "early")
    before = dbg("poisoned_blocks")
    t3 = time.monotonic()
    blk = inject_pfn("big", 0)
    t_mf = time.monotonic() - t3
    assert dbg("poisoned_blocks") == before + 1, (before, dbg("poisoned_blocks"))
    rc, out = finish(early)
    assert rc == 42 and f"code={BUS_MCEERR_AO} addr_ok=1" in out, (
        f"early-kill mapper of page {last}: want SIGBUS AO at the page, got exit {rc} {out.strip()}")
    open(GO, "w").close()
    rc, out = finish(whole)
    assert rc == 42 and f"code={BUS_MCEERR_AR} addr_ok=1" in out, (
        f"late-kill mapper of all {N} pages touching page {last}: want SIGBUS AR at the page, "
        f"got exit {rc} ({'no signal' if rc == 3 else out.strip()})")
    fd = os.open("big", os.O_RDONLY)
    for p in (0, N // 2, last):
        expect_errno("EIO", os.pread, fd, B, p * B)
    os.close(fd)
    log = kernel_log()[len(log0):]
    dev = os.path.basename(gtest.DEV)
    want = f"ferrofs ({dev}): memory failure in file data at block {blk} (+1), {N} owner pages"
    assert want in log, (want, log[-3000:])
    assert "shutting down" not in log, log[-3000:]
    assert f"ferrofs ({dev}): inode {ino} lost page" in log, log[-3000:]
    t4 = time.monotonic()
    rc, out = gtest.fsck_now()
    t_fsck = time.monotonic() - t4
    assert rc == 0 and "1 blocks quarantined" in out, (rc, out)
    print(f"rmap at scale: {N} owners of one block; clones {t_clone:.1f}s, {N} read faults + compare "
          f"{t_fault:.1f}s, debugfs listing {t_list:.1f}s, memory failure {t_mf:.1f}s, "
          f"umount + fsck + mount {t_fsck:.1f}s", flush=True)



def rmap_listing():
    """(owners listed, their distinct page indexes) from the debugfs rmap
    listing, which must name one block only (the header said 1 page)."""
    dev = os.path.basename(gtest.DEV)
    n = 0
    idx = set()
    blocks = set()
    with open(f"/sys/kernel/debug/ferrofs/{dev}/rmap") as f:
        for line in f:
            if line.startswith("#"):
                continue
            b, _, _, index = line.split()
            blocks.add(int(b))
            n += 1
            idx.add(int(index))
    assert len(blocks) == 1, f"debugfs rmap lists blocks {sorted(blocks)[:10]}"
    return n, idx


if __name__ == "__main__":
    gtest.main({n: with_cleanup(f) if n.startswith("test_") else f for n, f in globals().items()})
