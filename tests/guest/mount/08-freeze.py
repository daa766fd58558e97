#!/usr/bin/env python3
"""FIFREEZE and FITHAW. A frozen ferrofs is clean on media (superblock
state 1, fsck clean), so a snapshot or copy of the device taken then mounts
without recovery. Writers, write faults on DAX mappings, and the freeing of
an unlinked file at its last close wait for the thaw, then finish with
their data intact; readers go on. The first change after the thaw marks the
superblock dirty again. A shutdown of a frozen filesystem leaves it saying
the next mount recovers. Freezing twice is EBUSY, thawing a filesystem that
is not frozen EINVAL, and only root may do either."""
import fcntl
import mmap
import os
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import as_user, expect_errno, pattern, read_all

FIFREEZE = 0xC0045877
FITHAW = 0xC0045878
FS_IOC_SHUTDOWN = 0x8004587D
LOGFLUSH = 1
B = 4096


def ioctl_mnt(req, arg=0):
    fd = os.open(gtest.MNT, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, req, arg)
    finally:
        os.close(fd)


def freeze():
    ioctl_mnt(FIFREEZE)


def thaw():
    ioctl_mnt(FITHAW)


def sb_state():
    """The superblock state on the media: 1 clean, 2 the next mount recovers."""
    # the block device's page cache may hold old bytes (no sync: it would
    # not write on a frozen filesystem, and need not)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3")
    return gtest.sh(f"ferrofs-db {gtest.DEV} get state").strip()


def still_blocked(procs, secs=1.0):
    """None of procs has finished after secs (they wait for the thaw)."""
    time.sleep(secs)
    return all(p.poll() is None for p in procs)


def child(code):
    """A python child running code in the current directory."""
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(p, timeout=120):
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, f"child exited {p.returncode}: {out}{err}"
    return out


def test_frozen_is_clean_and_writers_wait():
    data = pattern(81, 40 * B)
    with open("data", "wb") as f:
        f.write(data)
    # an unlinked file still open: an orphan while frozen
    gone = os.open("gone", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(gone, pattern(82, 3 * B))
    os.unlink("gone")
    assert sb_state() == "2", "mounted, so dirty"
    freeze()
    try:
        assert sb_state() == "1", "frozen: clean on media"
        r = subprocess.run(["fsck.ferrofs", "-n", gtest.DEV], capture_output=True, text=True)
        assert r.returncode == 0, f"fsck of the frozen device: {r.stdout}{r.stderr}"
        # a writer, a create, and the last close of the unlinked file wait
        writer = child("import os; fd = os.open('data', os.O_WRONLY); os.pwrite(fd, b'W' * 4096, 0)")
        maker = child("open('made', 'wb').write(b'made')")
        # the closer holds the unlinked file open, says so, and closes it
        # when told: after ours, its close is the last (the inode is freed)
        closer = subprocess.Popen([sys.executable, "-c",
                                   f"import os, sys; fd = os.open('/proc/{os.getpid()}/fd/{gone}', os.O_RDONLY); "
                                   "print('open', flush=True); sys.stdin.readline(); os.close(fd)"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert closer.stdout.readline() == "open\n"
        os.close(gone)
        closer.stdin.write("go\n")
        closer.stdin.flush()
        assert still_blocked([writer, maker, closer]), "a change went through while frozen"
        assert not os.path.exists("made")
        # readers go on
        assert read_all(os.open("data", os.O_RDONLY)) == data
        assert os.stat("data").st_size == len(data)
        assert sb_state() == "1", "the frozen media changed"
    finally:
        thaw()
    for p in (writer, maker, closer):
        finished(p)
    assert read_all(os.open("data", os.O_RDONLY)) == b"W" * B + data[B:]
    assert open("made", "rb").read() == b"made"
    assert sb_state() == "2", "changed after the thaw, so dirty again"
    rc, out = gtest.fsck_now()
    assert rc == 0, out


def test_dax_write_fault_waits_for_thaw():
    fd = os.open("mapped", os.O_RDWR | os.O_CREAT, 0o644)
    os.ftruncate(fd, 4 * B)
    m = mmap.mmap(fd, 4 * B, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    m[:5] = b"first"
    # the child stores through its own mapping, in a loop of single stores
    # each after a wait for the parent's go (a pipe)
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(wr)
        os.read(rd, 1)
        m[B:B + 6] = b"second"  # a write fault on a page the freeze cleaned
        os._exit(0)
    os.close(rd)
    freeze()
    try:
        os.write(wr, b"g")
        time.sleep(1.0)
        done, _ = os.waitpid(pid, os.WNOHANG)
        assert done == 0, "a write fault went through while frozen"
        assert os.pread(fd, 6, B) == bytes(6)
        assert sb_state() == "1"
    finally:
        thaw()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert os.pread(fd, 6, B) == b"second" and os.pread(fd, 5, 0) == b"first"
    m.close()
    os.close(fd)


def test_shutdown_while_frozen_needs_recovery():
    with open("f", "wb") as f:
        f.write(b"before")
    freeze()
    try:
        assert sb_state() == "1"
        fd = os.open(gtest.MNT, os.O_RDONLY)
        fcntl.ioctl(fd, FS_IOC_SHUTDOWN, struct.pack("I", LOGFLUSH))
        os.close(fd)
        assert sb_state() == "2", "shut down: the next mount recovers"
    finally:
        thaw()
    expect_errno("EIO", os.stat, "f")
    cwd = os.getcwd()
    os.chdir("/")
    gtest.umount()
    gtest.mount()
    os.chdir(cwd)
    assert open("f", "rb").read() == b"before"


def test_errors():
    freeze()
    try:
        expect_errno("EBUSY", freeze)
        assert as_user(4000, 4000, thaw) == "errno EPERM"
    finally:
        thaw()
    expect_errno("EINVAL", thaw)
    assert as_user(4000, 4000, freeze) == "errno EPERM"


if __name__ == "__main__":
    gtest.main(globals())
