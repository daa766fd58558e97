#!/usr/bin/env python3
"""A clone that takes seconds (2^15 one-block extents, 16 steps of
STEP_BLOCKS), as XFS has them since 6.10: reads of the source go on while
it runs (xfstests generic/733: the source's i_rwsem is shared), and a fatal
signal stops it between two steps (generic/297 with ^C, 298 with SIGKILL).
What the finished steps shared stays shared and readable, the destination's
size covers exactly those steps (8 MiB each), it survives a remount, and
fsck is clean.

The tests act once the debugfs count of exclusive remap sections shows the
clone's first step has begun: at least that step gets done (signals are
looked at between steps) and 15 more are left."""
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


def clone_started(src):
    """Forks a child that clones all of src into g; returns (pid, bytes,
    remap sections before) once the clone's first step has begun."""
    n = os.fstat(src).st_size
    base = remap_sections()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # not KeyboardInterrupt
            dst = os.open("g", os.O_RDWR | os.O_CREAT, 0o644)
            clone_range(src, 0, n, dst, 0)
            code = 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + 600
    while remap_sections() == base:
        assert time.monotonic() < deadline, "the clone never started"
        time.sleep(0.001)
    return pid, n, base


def killed_clone(sig):
    src = many_extents()
    pid, n, base = clone_started(src)
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


def test_reads_of_the_source_go_on_during_a_clone():
    src = many_extents()
    pid, n, _ = clone_started(src)
    # a read of the last step's blocks, which the clone reaches last
    assert os.pread(src, B, n - B) == b"a" * B
    assert os.pread(src, 3 * B, n // 2) == b"a" * 3 * B
    ended, status = os.waitpid(pid, os.WNOHANG)
    if not ended:
        _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    assert not ended, "the reads waited for the clone to end"
    g = os.open("g", os.O_RDONLY)
    assert os.fstat(g).st_size == n
    assert read_all(g) == b"a" * n


def test_sigkill_stops_a_long_clone():
    killed_clone(signal.SIGKILL)


def test_sigint_with_its_default_action_stops_a_long_clone():
    killed_clone(signal.SIGINT)


if __name__ == "__main__":
    gtest.main(globals())
