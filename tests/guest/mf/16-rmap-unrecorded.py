#!/usr/bin/env python3
"""An owner the in-memory rmap cannot record is counted and still killed.

A read fault on a shared (reflinked) block records its (inode, page) in the
per-PFN rmap (rmap/). When that allocation fails, the owner is not recorded:
debugfs `rmap_unrecorded` counts it and dmesg says so, naming the device.
Memory failure unions the in-memory rmap with the engine's on-media rmap
btree, so a poisoned block still reaches that owner: its mapping is taken
away and its next load gets SIGBUS (BUS_MCEERR_AR at the page's address),
with a dmesg line naming the inode.

The failure is the kernel's own fault injection: failslab with its task
filter, probability 100, times 1, armed by the mapper (victim.c "failslab")
just around the load that faults the page in. The mapper has already read
the file's other pages, so that fault needs no page table and no DAX xarray
node: its first slab allocation, the one that fails, is the rmap node."""
import os
import sys

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import kernel_log, pattern
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mflib  # noqa: E402
from mflib import BUS_MCEERR_AR, dbg, finish, inject_pfn, shared_files, spawn, with_cleanup  # noqa: E402

B = 4096
GO = "/tmp/ferrofs-go"
FS = "/sys/kernel/debug/failslab"


def failslab(**kv):
    for k, v in kv.items():
        with open(f"{FS}/{k.replace('_', '-')}", "w") as f:
            f.write(str(v))


def rmap_rows():
    dev = os.path.basename(gtest.DEV)
    with open(f"/sys/kernel/debug/ferrofs/{dev}/rmap") as f:
        return {tuple(int(x, 0) for x in l.split()) for l in f.read().splitlines() if not l.startswith("#")}


def test_unrecorded_owner_gets_sigbus():
    assert os.path.isdir(FS), f"{FS} missing (CONFIG_FAILSLAB, CONFIG_FAULT_INJECTION_DEBUG_FS)"
    mflib.build_victim()
    if os.path.exists(GO):
        os.unlink(GO)
    dev = os.path.basename(gtest.DEV)
    names = ["src", "clone"]
    data = pattern(21, 4 * B)
    shared_files(names, data)
    isrc, iclone = (os.stat(n).st_ino for n in names)
    page = 1
    # a recorded late-kill mapper of src, for contrast
    rec = spawn("src", page, "late")
    before = dbg("rmap_unrecorded")
    failslab(task_filter="Y", verbose=0, probability=100, interval=1, space=0,
             ignore_gfp_wait="N", times=1)
    try:
        unrec = spawn("clone", page, "failslab", 4 * B)
        with open(f"{FS}/times") as f:
            left = int(f.read())
    finally:
        failslab(times=0, probability=0)
    assert left == 0, "failslab did not fire in the mapper's fault: test premise broken"
    assert dbg("rmap_unrecorded") == before + 1, (before, dbg("rmap_unrecorded"))
    log = kernel_log()
    assert f"ferrofs ({dev}): rmap: inode {iclone} page {page}" in log, log[-2000:]
    rows = rmap_rows()
    owners = {(r[2], r[3]) for r in rows}
    assert (isrc, page) in owners, ("src's mapper is not recorded", rows)
    assert (iclone, page) not in owners, ("clone's mapper was recorded after all", rows)
    # poison the shared block from no mapper (a scrub): both mappers are
    # late-kill, so each must lose its mapping and fault on its next load
    pblk = inject_pfn("src", page)
    assert any(r[0] == pblk for r in rows), (pblk, rows)
    open(GO, "w").close()
    for n, p in (("src", rec), ("clone", unrec)):
        rc, out = finish(p)
        assert rc == 42 and f"code={BUS_MCEERR_AR} addr_ok=1" in out, (
            f"late-kill mapper of {n}: want SIGBUS AR at the page, got exit {rc} "
            f"({'no signal within 30 s' if rc == 3 else out.strip()})")
    log = kernel_log()
    for ino in (isrc, iclone):
        assert f"ferrofs ({dev}): inode {ino} lost page {page} to a memory failure" in log, (ino, log[-2000:])




if __name__ == "__main__":
    gtest.main({n: with_cleanup(f) if n.startswith("test_") else f for n, f in globals().items()})
