#!/usr/bin/env python3
"""A fatal signal stops a long FICLONERANGE between its bounded steps
(xfstests generic/297 with ^C, 298 with SIGKILL: a reflink that would run
for seconds must stop within them). What the finished steps shared stays
shared and readable, the destination's size covers exactly those steps
(8 MiB each, STEP_BLOCKS), it survives a remount, and fsck is clean.

The signal is sent once the debugfs count of exclusive remap sections
shows the clone's first step has begun, so at least that step is done
(the check is between steps) and there are 15 more it must not finish."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import clone_range, mkfile, read_all

B = 4096
STEP = 2048 * B
LOG2_BLOCKS = 15  # 32768 one-block extents, 16 steps


def remap_sections():
    dev = os.path.basename(gtest.DEV)
    with open(f"/sys/kernel/debug/ferrofs/{dev}/locks/remap_exclusive") as f:
        return int(f.read())


def many_extents():
    """f: 2^LOG2_BLOCKS blocks of b'a', every one a reflink of block 0, so
    every block is its own extent and a clone of it is slow."""
    fd = mkfile("f", b"a" * B)
    for i in range(LOG2_BLOCKS):
        clone_range(fd, 0, B << i, fd, B << i)
    assert os.fstat(fd).st_size == B << LOG2_BLOCKS
    return fd


def killed_clone(sig):
    src = many_extents()
    n = os.fstat(src).st_size
    base = remap_sections()
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # not KeyboardInterrupt
            dst = os.open("g", os.O_RDWR | os.O_CREAT, 0o644)
            clone_range(src, 0, n, dst, 0)
        finally:
            os._exit(0)
    deadline = time.monotonic() + 600
    while remap_sections() == base:
        assert time.monotonic() < deadline, "the clone never started"
        time.sleep(0.001)
    os.kill(pid, sig)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == sig, f"the child was not killed by {sig}: {status:#x}"
    g = os.open("g", os.O_RDONLY)
    done = os.fstat(g).st_size
    assert done % STEP == 0 and STEP <= done < n, f"{done} bytes cloned of {n}: not whole steps, or not stopped"
    assert read_all(g) == b"a" * done
    # the clone did not go on after it returned
    assert remap_sections() - base <= done // STEP, (remap_sections() - base, done // STEP)
    os.close(g)
    gtest.remount()
    g = os.open("g", os.O_RDONLY)
    assert os.fstat(g).st_size == done
    assert read_all(g) == b"a" * done
    rc, out = gtest.fsck_now()
    assert rc == 0, out


def test_sigkill_stops_a_long_clone():
    killed_clone(signal.SIGKILL)


def test_sigint_with_its_default_action_stops_a_long_clone():
    killed_clone(signal.SIGINT)


if __name__ == "__main__":
    gtest.main(globals())
