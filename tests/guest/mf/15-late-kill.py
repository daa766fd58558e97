#!/usr/bin/env python3
"""Memory failure and late-kill mappers of other files (issue 18).

6.12's mf_dax_kill_procs() collects only early-kill tasks and the current
one, and unmaps the page only when it collected someone. A late-kill process
(the default: vm.memory_failure_early_kill=0, no PR_MCE_KILL) that maps the
poisoned block through another reflinked file, or through the same file when
the poison was not raised by a mapper, would keep its PTE or PMD and load the
poison again. ferrofs unmaps the lost pages from every owner's mapping, so
each later access faults, iomap_begin refuses the quarantined block, and the
process gets SIGBUS with BUS_MCEERR_AR at the address it touched; early-kill
mappers get BUS_MCEERR_AO at once. After a remount, reads of the range fail
with EIO and mapped loads get SIGBUS through every file."""
import mmap
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import expect_errno, pattern
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mflib  # noqa: E402
from mflib import (BUS_MCEERR_AO, BUS_MCEERR_AR, LIVE, VICTIM, dbg, finish,  # noqa: E402
                   inject_pfn, shared_files, spawn, with_cleanup)

B = 4096
PMD = 2 << 20
GO = "/tmp/ferrofs-go"


def build_victim():
    mflib.build_victim()
    if os.path.exists(GO):
        os.unlink(GO)


def expect_sigbus(p, code, what):
    rc, out = finish(p)
    assert rc == 42 and f"code={code} addr_ok=1" in out, (
        f"{what}: want SIGBUS code {code} at the page's address, got exit {rc} "
        f"({'no signal within 30 s' if rc == 3 else out.strip()})")





def after_remount(names, page, good):
    """Poisoned page: EIO to read(2), SIGBUS AR to a mapped load, through
    every file; the rest of every file reads back."""
    gtest.remount()
    for n in names:
        fd = os.open(n, os.O_RDONLY)
        expect_errno("EIO", os.pread, fd, B, page * B)
        for off, want in good:
            assert os.pread(fd, len(want), off) == want, f"{n}: data at {off} lost"
        os.close(fd)
        # the go file exists: the victim's first load is the one that faults
        p = subprocess.Popen([VICTIM, n, str(page), "late"], stdout=subprocess.PIPE, text=True)
        LIVE.append(p)
        expect_sigbus(p, BUS_MCEERR_AR, f"{n} mapped after remount")


def test_reflinked_late_mappers_pte():
    """The issue's scenario: src + 3 clones share a block; 3 late-kill
    readers map src, clone1, clone2; a 4th process poisons page 0 through
    clone3 with MADV_HWPOISON."""
    build_victim()
    names = ["src", "clone1", "clone2", "clone3"]
    data = pattern(11, 4 * B)
    shared_files(names, data)
    readers = [spawn(n, 0, "late") for n in names[:3]]
    poisoned = dbg("poisoned_blocks")
    inj = spawn("clone3", 0, "inject")
    expect_sigbus(inj, BUS_MCEERR_AR, "injector")
    assert dbg("poisoned_blocks") == poisoned + 1
    open(GO, "w").close()
    for n, p in zip(names, readers):
        expect_sigbus(p, BUS_MCEERR_AR, f"late-kill reader of {n}")
    after_remount(names, 0, [(B, data[B:])])


def test_reflinked_early_and_late_mappers():
    """An early-kill mapper (PR_MCE_KILL_EARLY) of another reflinked file is
    told at once with BUS_MCEERR_AO; late-kill ones get BUS_MCEERR_AR when
    they next touch the page."""
    build_victim()
    names = ["src", "clone1", "clone2", "clone3"]
    data = pattern(12, 4 * B)
    shared_files(names, data)
    modes = ["early", "late", "late"]
    readers = [spawn(n, 2, m) for n, m in zip(names, modes)]
    inj = spawn("clone3", 2, "inject")
    expect_sigbus(inj, BUS_MCEERR_AR, "injector")
    # the early one must not need the go file
    expect_sigbus(readers[0], BUS_MCEERR_AO, "early-kill reader of src")
    open(GO, "w").close()
    for n, p in zip(names[1:3], readers[1:]):
        expect_sigbus(p, BUS_MCEERR_AR, f"late-kill reader of {n}")
    after_remount(names, 2, [(0, data[:2 * B]), (3 * B, data[3 * B:])])


def test_reflinked_mappers_poison_from_no_mapper():
    """corrupt-pfn: no task is current or early, so 6.12 would unmap
    nothing at all."""
    build_victim()
    names = ["src", "clone1", "clone2"]
    data = pattern(13, 4 * B)
    shared_files(names, data)
    readers = [spawn(n, 1, "late") for n in names]
    inject_pfn("src", 1)
    open(GO, "w").close()
    for n, p in zip(names, readers):
        expect_sigbus(p, BUS_MCEERR_AR, f"late-kill reader of {n}")


def pmd_file(name, size, seed):
    """A file written through PMD write faults, so its extents are 2 MiB
    aligned (as in reflink/30-pmd-entries.py)."""
    fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    os.ftruncate(fd, size)
    m = mmap.mmap(fd, size)
    before = dbg("pmd_faults")
    data = pattern(seed, size)
    m[:] = data
    assert dbg("pmd_faults") - before >= size // PMD, "no PMD faults: test premise broken"
    m.close()
    os.fsync(fd)
    os.close(fd)
    return data


def test_pmd_late_mappers():
    """Late-kill readers holding 2 MiB PMD mappings of an exclusive extent,
    poisoned from no mapper: the whole PMD goes, each reader faults and gets
    AR at the poisoned page; the other 511 pages still map and read."""
    build_victim()
    data = pmd_file("big", PMD, 14)
    page = 37
    before = dbg("pmd_faults")
    readers = [spawn("big", page, "late", PMD) for _ in range(3)]
    assert dbg("pmd_faults") - before >= 3, "readers did not get PMD mappings"
    inject_pfn("big", page)
    open(GO, "w").close()
    for p in readers:
        expect_sigbus(p, BUS_MCEERR_AR, "late-kill PMD reader")
    fd = os.open("big", os.O_RDONLY)
    m = mmap.mmap(fd, PMD, prot=mmap.PROT_READ)
    assert m[:page * B] == data[:page * B] and m[(page + 1) * B:] == data[(page + 1) * B:]
    m.close()
    os.close(fd)
    after_remount(["big"], page, [(0, data[:page * B]), ((page + 1) * B, data[(page + 1) * B:])])


def test_pmd_early_and_late_mappers():
    """An early-kill PMD mapper gets AO at the poisoned page's address at
    once; a late-kill one AR when it touches it."""
    build_victim()
    pmd_file("big", PMD, 15)
    page = 300
    before = dbg("pmd_faults")
    late = spawn("big", page, "late", PMD)
    early = spawn("big", page, "early", PMD)
    assert dbg("pmd_faults") - before >= 2, "readers did not get PMD mappings"
    inject_pfn("big", page)
    expect_sigbus(early, BUS_MCEERR_AO, "early-kill PMD reader")
    open(GO, "w").close()
    expect_sigbus(late, BUS_MCEERR_AR, "late-kill PMD reader")



if __name__ == "__main__":
    gtest.main({n: with_cleanup(f) if n.startswith("test_") else f for n, f in globals().items()})
