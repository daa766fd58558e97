#!/usr/bin/env python3
"""Memory failure on DAX pages (xfs/550-552 in spirit, written for ferrofs):
poison a page of a file reflinked into three files, each mapped by its own
process: every process gets SIGBUS with the right code and address; the
rest of every file reads back correctly; the page reads EIO; the block is
quarantined and stays so after remount; fsck stays clean."""
import os
import sys

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import expect_errno, pattern
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mflib import BUS_MCEERR_AO, BUS_MCEERR_AR, build_victim, dbg, finish, shared_files, spawn  # noqa: E402

B = 4096
stat = dbg


def rmap_lines():
    dev = os.path.basename(gtest.DEV)
    with open(f"/sys/kernel/debug/ferrofs/{dev}/rmap") as f:
        return [l.split() for l in f if not l.startswith("#")]




def test_poison_shared_page():
    build_victim()
    data = pattern(1, 4 * B)
    names = ["a", "b", "c"]
    shared_files(names, data)
    if os.path.exists("/tmp/ferrofs-go"):
        os.unlink("/tmp/ferrofs-go")
    # a's own mapper is "late": the injector's later fault on the same page
    # of the same file zapped its PTE (fsdax unmaps an index when it maps a
    # shared page there), so it only learns of the loss on its next access.
    modes = ["late", "early", "early"]
    waiters = [spawn(n, 1, m) for n, m in zip(names, modes)]
    # the in-memory rmap knows all three mappers of the shared block
    owners = [l for l in rmap_lines()]
    assert len(owners) >= 3, owners
    blocks = {l[0] for l in owners}
    assert len(blocks) == 1, owners
    before = stat("poisoned_blocks")
    inj = spawn("a", 1, "inject")
    rc, out = finish(inj)
    assert rc == 42 and f"code={BUS_MCEERR_AR} addr_ok=1" in out, (rc, out)
    # early-kill mappers are told at once (action optional); late-kill ones
    # were unmapped and get action-required SIGBUS when they touch the page
    open("/tmp/ferrofs-go", "w").close()
    for n, m, w in zip(names, modes, waiters):
        rc, out = finish(w)
        code = BUS_MCEERR_AO if m == "early" else BUS_MCEERR_AR
        assert rc == 42 and f"code={code} addr_ok=1" in out, (n, m, rc, out)
    assert stat("poisoned_blocks") == before + 1
    for n in names:  # the rest of every file is intact; the lost page reads EIO
        fd = os.open(n, os.O_RDONLY)
        assert os.pread(fd, B, 0) == data[:B]
        assert os.pread(fd, 2 * B, 2 * B) == data[2 * B:]
        expect_errno("EIO", os.pread, fd, B, B)
        os.close(fd)
    gtest.remount()
    assert stat("poisoned_blocks") == before + 1, "quarantine lost at remount"
    fd = os.open("a", os.O_RDONLY)
    expect_errno("EIO", os.pread, fd, B, B)
    os.close(fd)
    rc, out = gtest.fsck_now()
    assert rc == 0 and "1 blocks quarantined" in out, (rc, out)


def test_poison_unshared_and_partly_shared():
    build_victim()
    data = pattern(2, 8 * B)
    fd = os.open("solo", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, data)
    os.fsync(fd)
    os.close(fd)
    w = spawn("solo", 3, "early")
    inj = spawn("solo", 3, "inject")
    rc, out = finish(inj)
    assert rc == 42 and f"code={BUS_MCEERR_AR}" in out, (rc, out)
    rc, out = finish(w)
    assert rc == 42 and f"code={BUS_MCEERR_AO} addr_ok=1" in out, (rc, out)
    fd = os.open("solo", os.O_RDONLY)
    assert os.pread(fd, 3 * B, 0) == data[:3 * B] and os.pread(fd, 4 * B, 4 * B) == data[4 * B:]
    expect_errno("EIO", os.pread, fd, B, 3 * B)
    os.close(fd)
    # partly shared: page 0 shared with a clone, page 5 only in the original
    shared_files(["p1", "p2"], data)
    fd = os.open("p1", os.O_RDWR)
    os.pwrite(fd, b"unshare", 5 * B)  # CoW: page 5 of p1 is now exclusive
    os.close(fd)
    inj = spawn("p1", 5, "inject")
    rc, out = finish(inj)
    assert rc == 42 and f"code={BUS_MCEERR_AR}" in out, (rc, out)
    fd2 = os.open("p2", os.O_RDONLY)
    assert os.pread(fd2, 8 * B, 0) == data, "the clone lost data it did not share"
    os.close(fd2)


if __name__ == "__main__":
    gtest.main(globals())
