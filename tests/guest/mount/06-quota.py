#!/usr/bin/env python3
"""Disk quotas (Documentation/quota-plan.md, steps 2-4): the quota mount
options and their /proc/mounts form, quota-tools' round trip on visible
quota files (quotacheck, quotaon, setquota, repquota), limits that reach
the media through the quota layer's own writes and survive an unmount,
quotas kept across remount ro/rw, a loaded quota file that users cannot
write, refusals with an errno and a kernel log line naming the device and
the cause, an unmount after a shutdown while quota is on; inodes charged to
their owner and group (create, O_TMPFILE, chown, unlink) and blocks charged
exactly (write, fallocate, punch, store faults, truncate, reflink, CoW,
a long symlink's target, a dedupe into a file opened read-only, a charge
left unsettled by a failed read back and settled at eviction), with
EDQUOT, a short write or SIGBUS at a hard limit, and the kernel's usage
equal to a quotacheck recount. tests/guest/stress/55-quota.py races
the same accounting."""
import ctypes
import ctypes.util
import errno
import fcntl
import os
import mmap
import re
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import as_user, clone, dedupe, expect_errno, fallocate, parse_repquota, pattern

FS_IOC_SHUTDOWN = 0x8004587D
NOLOGFLUSH = 2
Q_QUOTAON, Q_GETFMT, Q_GETQUOTA = 0x800002, 0x800004, 0x800007
USRQUOTA, GRPQUOTA = 0, 1
QFMT_VFS_V0 = 2  # what quotacheck writes by default

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def quotactl(cmd, qtype, qid, addr):
    """quotactl(2) on the test device: 'OK' or the errno name."""
    r = _libc.quotactl((cmd << 8) | qtype, gtest.DEV.encode(), qid, addr)
    return "OK" if r == 0 else errno.errorcode[ctypes.get_errno()]


def used_bytes(qtype, qid):
    """The kernel's block usage of one ID in bytes (Q_GETQUOTA: no process
    to start, for checks in a loop)."""
    buf = ctypes.create_string_buffer(72)  # struct if_dqblk
    r = quotactl(Q_GETQUOTA, qtype, qid, buf)
    assert r == "OK", r
    return struct.unpack_from("Q", buf, 16)[0]  # dqb_curspace


def dmesg():
    return subprocess.run(["dmesg"], capture_output=True, text=True).stdout


def opts():
    line = [l for l in open("/proc/mounts") if f" {gtest.MNT} " in l][-1]
    return line.split()[3].split(",")


def plain_mount():
    """Back to the harness's mount: quotas off, quota files gone."""
    gtest.sh(f"quotaoff -ug {gtest.MNT}", check=False)
    for f in ("aquota.user", "aquota.group"):
        if os.path.exists(f"{gtest.MNT}/{f}"):
            os.unlink(f"{gtest.MNT}/{f}")
    gtest.mount_with("")


def repquota(kind):
    """{id: (used KiB, soft, hard, inodes, isoft, ihard)} from repquota -n
    (a grace column appears only past a soft limit)."""
    out = gtest.sh(f"repquota -{kind} -n -v {gtest.MNT}")  # -v: IDs without usage too
    return parse_repquota(out), out


def quota_state(kind):
    """'on' or 'off', from quotaon -p (which exits 1 when a type is on)."""
    out = gtest.sh(f"quotaon -p{kind} {gtest.MNT}", check=False)
    return "on" if "is on" in out else "off"


def inodes(kind, qid):
    rows, _ = repquota(kind)
    return rows.get(qid, (0,) * 6)[3]


def kib(kind, qid):
    """Block usage in KiB (what repquota shows)."""
    rows, _ = repquota(kind)
    return rows.get(qid, (0,) * 6)[0]


def usage_table():
    """{kind: {id: (KiB, inodes)}} of both quota types."""
    return {k: {q: (r[0], r[3]) for q, r in repquota(k)[0].items()} for k in "ug"}


FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_UNSHARE_RANGE = 1, 2, 0x40


def quota_on_with_dir(name):
    """User and group quotas on, fresh quota files, and a sticky
    world-writable directory NAME for other users' files: its path."""
    gtest.mount_with("usrquota,grpquota")
    gtest.sh(f"quotacheck -cug {gtest.MNT}")
    gtest.sh(f"quotaon -ug {gtest.MNT}")
    d = f"{gtest.MNT}/{name}"
    os.mkdir(d)
    os.chmod(d, 0o1777)
    return d


def assert_quotacheck_agrees():
    """What the kernel counted is what a quotacheck recount finds."""
    counted = usage_table()
    gtest.sh(f"quotaoff -ug {gtest.MNT}")
    gtest.sh(f"quotacheck -ug {gtest.MNT}")
    gtest.sh(f"quotaon -ug {gtest.MNT}")
    assert usage_table() == counted, (counted, usage_table())


def test_options_in_proc_mounts():
    gtest.mount_with("usrquota,grpquota")
    o = opts()
    assert "usrquota" in o and "grpquota" in o, o
    gtest.mount_with("quota")  # the old name of usrquota
    o = opts()
    assert "usrquota" in o and "grpquota" not in o, o
    gtest.mount_with("noquota")
    o = opts()
    assert not any("quota" in x for x in o), o
    # an option left out on a remount keeps its state...
    gtest.mount_with("usrquota")
    gtest.sh(f"mount -o remount,ro {gtest.MNT}")
    assert "ro" in opts() and "usrquota" in opts(), opts()
    gtest.sh(f"mount -o remount,rw {gtest.MNT}")
    assert "rw" in opts() and "usrquota" in opts(), opts()
    # ...but one cannot be added: EINVAL, and the log says why
    log0 = dmesg()
    r = _libc.mount(gtest.DEV.encode(), gtest.MNT.encode(), b"ferrofs", 32, b"grpquota")  # MS_REMOUNT
    assert r != 0 and ctypes.get_errno() == errno.EINVAL, (r, ctypes.get_errno())
    log = dmesg()[len(log0):]
    assert re.search(r"ferrofs \(pmem\d+\): cannot turn on grpquota on remount; unmount and mount with it", log), log
    assert "grpquota" not in opts()
    plain_mount()


def test_quotaon_needs_the_option():
    gtest.mount_with("usrquota")
    gtest.sh(f"quotacheck -cu {gtest.MNT}")
    log0 = dmesg()
    # a valid quota file, of the type the mount has: the option decides
    assert quotactl(Q_QUOTAON, GRPQUOTA, QFMT_VFS_V0, f"{gtest.MNT}/aquota.user".encode()) == "EINVAL"
    log = dmesg()[len(log0):]
    assert re.search(r"ferrofs \(pmem\d+\): cannot turn on group quota: the filesystem was not mounted with grpquota", log), log
    assert quotactl(Q_QUOTAON, USRQUOTA, QFMT_VFS_V0, f"{gtest.MNT}/aquota.user".encode()) == "OK"
    fmt = ctypes.c_uint32(0)
    assert quotactl(Q_GETFMT, USRQUOTA, 0, ctypes.byref(fmt)) == "OK" and fmt.value == QFMT_VFS_V0, fmt.value
    plain_mount()


def test_limits_persist_through_quota_write():
    gtest.mount_with("usrquota,grpquota")
    gtest.sh(f"quotacheck -cug {gtest.MNT}")
    before = os.stat(f"{gtest.MNT}/aquota.user").st_size
    assert before > 0
    gtest.sh(f"quotaon -ug {gtest.MNT}")
    assert quota_state("u") == "on"
    # 100 random IDs (generic/244's way): the quota tree grows through
    # quota_write, past the file's old end
    ids = [1000 + 977 * i for i in range(100)]
    for i, qid in enumerate(ids):
        gtest.sh(f"setquota -u {qid} {100 + i} {200 + i} {10 + i} {20 + i} {gtest.MNT}")
    gtest.sh(f"setquota -g 4242 300 400 30 40 {gtest.MNT}")
    rows, out = repquota("u")
    for i, qid in enumerate(ids):
        assert rows.get(qid, ())[1:3] == (100 + i, 200 + i), (qid, out)
    # unmount with quota on: put_super writes the dquots, then releases
    # the files; the next mount reads them back through the read path
    gtest.mount_with("usrquota,grpquota")
    assert os.stat(f"{gtest.MNT}/aquota.user").st_size > before
    gtest.sh(f"quotaon -ug {gtest.MNT}")
    rows, out = repquota("u")
    for i, qid in enumerate(ids):
        r = rows.get(qid, (0,) * 6)
        assert (r[1], r[2], r[4], r[5]) == (100 + i, 200 + i, 10 + i, 20 + i), (qid, out)
    grows, gout = repquota("g")
    assert grows.get(4242, ())[1:3] == (300, 400), gout
    # quota off, the tools read the file themselves (through read(2))
    gtest.sh(f"quotaoff -ug {gtest.MNT}")
    rows, out = repquota("u")
    assert rows.get(ids[-1], ())[1:3] == (199, 299), out
    plain_mount()


def test_loaded_quota_file_is_immutable():
    gtest.mount_with("usrquota")
    gtest.sh(f"quotacheck -cu {gtest.MNT}")
    q = f"{gtest.MNT}/aquota.user"
    gtest.sh(f"quotaon -u {gtest.MNT}")
    expect_errno("EPERM", os.open, q, os.O_WRONLY)
    expect_errno("EPERM", os.truncate, q, 0)
    expect_errno("EPERM", os.unlink, q)
    expect_errno("EPERM", os.chmod, q, 0o640)
    # a flag change rewrites the inode's flags from the engine's: the
    # loaded file stays immutable
    gtest.sh(f"chattr +A {q}")
    expect_errno("EPERM", os.open, q, os.O_WRONLY)
    gtest.sh(f"quotaoff -u {gtest.MNT}")
    fd = os.open(q, os.O_WRONLY)  # its own flags again
    os.close(fd)
    assert "A" in gtest.sh(f"lsattr {q}").split()[0]
    plain_mount()


def test_remount_ro_rw_keeps_quota_on():
    # generic/082 and 235's sequence
    gtest.mount_with("usrquota,grpquota")
    gtest.sh(f"quotacheck -cug {gtest.MNT}")
    gtest.sh(f"quotaon -ug {gtest.MNT}")
    gtest.sh(f"setquota -u 77 500 600 0 0 {gtest.MNT}")
    r = subprocess.run(["mount", "-o", "remount,ro,nosuchopt", gtest.MNT], capture_output=True, text=True)
    assert r.returncode != 0, r
    assert quota_state("u") == "on"
    gtest.sh(f"mount -o remount,ro {gtest.MNT}")
    assert "ro" in opts()
    gtest.sh(f"mount -o remount,rw {gtest.MNT}")
    assert quota_state("u") == "on"
    gtest.sh(f"setquota -u 78 700 800 0 0 {gtest.MNT}")
    rows, out = repquota("u")
    assert rows.get(77, ())[1:3] == (500, 600) and rows.get(78, ())[1:3] == (700, 800), out
    plain_mount()


def test_inodes_charged_to_owner_and_group():
    d = quota_on_with_dir("shared")

    def make():
        for i in range(5):
            open(f"{d}/f{i}", "w").close()
        os.mkdir(f"{d}/dir")
        os.symlink("f0", f"{d}/link")
        os.mkfifo(f"{d}/fifo")
    assert as_user(2000, 3000, make) == "ok None"
    assert inodes("u", 2000) == 8 and inodes("g", 3000) == 8, repquota("u")[1]
    os.chown(f"{d}/f0", 2001, 3001)  # the charge moves with the owner
    assert (inodes("u", 2000), inodes("u", 2001)) == (7, 1), repquota("u")[1]
    assert (inodes("g", 3000), inodes("g", 3001)) == (7, 1), repquota("g")[1]
    os.unlink(f"{d}/f1")
    os.unlink(f"{d}/f2")
    assert inodes("u", 2000) == 5, repquota("u")[1]

    def tmpfile():
        fd = os.open(d, os.O_TMPFILE | os.O_RDWR, 0o600)
        return fd
    # an O_TMPFILE counts while it exists (the child's exit closes it)
    assert as_user(2000, 3000, tmpfile).startswith("ok ")
    assert inodes("u", 2000) == 5, repquota("u")[1]

    # the hard inode limit: one more file, then EDQUOT; nothing is left of
    # the refused create
    gtest.sh(f"setquota -u 2000 0 0 0 6 {gtest.MNT}")

    def fill():
        open(f"{d}/g0", "w").close()
        try:
            open(f"{d}/g1", "w").close()
        finally:
            assert not os.path.exists(f"{d}/g1")
    assert as_user(2000, 3000, fill) == "errno EDQUOT"
    assert as_user(2000, 3000, lambda: os.mkdir(f"{d}/g2")) == "errno EDQUOT"
    assert inodes("u", 2000) == 6, repquota("u")[1]
    # root is not limited (CAP_SYS_RESOURCE), as on ext4
    open(f"{d}/byroot", "w").close()
    os.chown(f"{d}/byroot", 2000, 3000)
    assert inodes("u", 2000) == 7, repquota("u")[1]

    # what was counted is what quotacheck counts
    assert_quotacheck_agrees()
    plain_mount()


def test_directory_entries_charged_to_owner():
    """A directory's entries live in the filesystem-wide DIR btree; the
    directory is charged a block for each 13 of them (a full leaf) to its
    owner, and st_blocks says the same, so quotacheck agrees. A user over
    the block limit gets EDQUOT for a link or a rename that would take a
    new block's worth (xfstests generic/681, 682; XFS reserves quota for a
    directory's growth), and removing names gives the blocks back."""
    d = quota_on_with_dir("dirq")
    sub = f"{d}/sub"
    os.mkdir(sub)
    os.chown(sub, 4300, 5300)
    for n in ("file", "mine", "more"):
        open(f"{d}/{n}", "wb").close()
        os.chown(f"{d}/{n}", 4300, 5300)
    assert os.stat(sub).st_blocks == 0 and kib("u", 4300) == 0
    for i in range(13):
        os.link(f"{d}/file", f"{sub}/x{i}")
    assert os.stat(sub).st_blocks == 8 and kib("u", 4300) == 4, repquota("u")[1]
    os.link(f"{d}/file", f"{sub}/x13")
    assert os.stat(sub).st_blocks == 16 and kib("u", 4300) == 8 and kib("g", 5300) == 8
    gtest.sh(f"setquota -u 4300 0 8 0 0 {gtest.MNT}")

    def fill():
        for i in range(14, 40):
            try:
                os.link(f"{d}/file", f"{sub}/x{i}")
            except OSError as e:
                return f"{errno.errorcode[e.errno]} at {i}"
        return "no error"
    # block 2 holds entries 14..26; the 27th needs a third
    assert as_user(4300, 5300, fill) == "ok 'EDQUOT at 26'"
    assert len(os.listdir(sub)) == 26 and kib("u", 4300) == 8
    assert as_user(4300, 5300, lambda: os.rename(f"{d}/mine", f"{sub}/y")) == "errno EDQUOT"
    # a rename over an existing name adds none: allowed
    assert as_user(4300, 5300, lambda: os.rename(f"{d}/mine", f"{sub}/x20")) == "ok None"
    for i in range(13):
        os.unlink(f"{sub}/x{i}")
    assert os.stat(sub).st_blocks == 8 and kib("u", 4300) == 4, repquota("u")[1]
    # now there is room: the rename goes through
    assert as_user(4300, 5300, lambda: os.rename(f"{d}/more", f"{sub}/y")) == "ok None"
    assert kib("u", 4300) == 8
    assert_quotacheck_agrees()
    gtest.sh(f"setquota -u 4300 0 0 0 0 {gtest.MNT}")
    gtest.sh(f"rm -rf {d}")
    assert kib("u", 4300) == 0 and inodes("u", 4300) == 0, repquota("u")[1]
    plain_mount()


def test_blocks_charged_to_owner():
    # IDs of its own: the inode test counts 2000/3000 from zero
    d = quota_on_with_dir("blk")
    log0 = dmesg()

    def writes():
        with open(f"{d}/a", "wb") as f:
            f.write(pattern(1, 40 * 1024))  # 10 blocks
        fd = os.open(f"{d}/b", os.O_RDWR | os.O_CREAT, 0o644)
        fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 64 * 1024)  # 16 blocks, unwritten
        os.ftruncate(fd, 64 * 1024)
        os.pwrite(fd, b"x" * 4096, 8192)  # into preallocated space: nothing new
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 32 * 1024, 16 * 1024)  # -4
        os.close(fd)
        # a DAX store fault into a hole
        fd = os.open(f"{d}/m", os.O_RDWR | os.O_CREAT, 0o644)
        os.ftruncate(fd, 8 * 4096)
        m = mmap.mmap(fd, 8 * 4096)
        m[0] = 1
        m[5 * 4096] = 1  # 2 blocks
        m.close()
        os.close(fd)
    assert as_user(4000, 5000, writes) == "ok None"
    assert kib("u", 4000) == 4 * (10 + 16 - 4 + 2), repquota("u")[1]
    assert kib("g", 5000) == 4 * (10 + 16 - 4 + 2), repquota("g")[1]
    os.truncate(f"{d}/a", 8192)  # -8
    assert kib("u", 4000) == 4 * 16, repquota("u")[1]

    # a clone is charged to its owner in full; writing over it (CoW)
    # changes nothing; the source's owner is not charged
    with open(f"{d}/src", "wb") as f:
        f.write(pattern(2, 64 * 1024))  # root's, 16 blocks
    root0 = kib("u", 0)

    def reflink():
        with open(f"{d}/src", "rb") as s, open(f"{d}/copy", "wb") as c:
            clone(s.fileno(), c.fileno())
        with open(f"{d}/copy", "r+b") as c:
            c.write(b"y" * 4096)
    assert as_user(4000, 5000, reflink) == "ok None"
    assert kib("u", 4000) == 4 * (16 + 16), repquota("u")[1]
    assert kib("u", 0) == root0, repquota("u")[1]
    # chown moves the file's blocks
    os.chown(f"{d}/copy", 4001, 5001)
    assert (kib("u", 4000), kib("u", 4001)) == (4 * 16, 4 * 16), repquota("u")[1]
    # unlink gives them back (when the inode goes)
    os.unlink(f"{d}/m")
    assert kib("u", 4000) == 4 * 14, repquota("u")[1]

    # the hard block limit: a write stops exactly there, then EDQUOT
    gtest.sh(f"setquota -u 4000 0 {4 * 14 + 20} 0 0 {gtest.MNT}")

    def fill():
        fd = os.open(f"{d}/fill", os.O_WRONLY | os.O_CREAT, 0o644)
        n = os.write(fd, b"z" * 64 * 1024)
        try:
            os.write(fd, b"z")
        finally:
            os.close(fd)
        return n
    assert as_user(4000, 5000, fill) == "errno EDQUOT"
    assert os.path.getsize(f"{d}/fill") == 20 * 1024
    assert kib("u", 4000) == 4 * 14 + 20, repquota("u")[1]
    # and nothing more gets through: fallocate, a clone, a store fault
    fd = os.open(f"{d}/free", os.O_RDWR | os.O_CREAT, 0o666)
    os.ftruncate(fd, 4096)
    os.close(fd)
    os.chown(f"{d}/free", 4000, 5000)

    def more_fallocate():
        fd = os.open(f"{d}/free", os.O_RDWR)
        fallocate(fd, 0, 0, 4096)
    assert as_user(4000, 5000, more_fallocate) == "errno EDQUOT"

    def more_clone():
        with open(f"{d}/src", "rb") as s, open(f"{d}/free", "r+b") as c:
            clone(s.fileno(), c.fileno())
    assert as_user(4000, 5000, more_clone) == "errno EDQUOT"

    def more_fault():
        fd = os.open(f"{d}/free", os.O_RDWR)
        m = mmap.mmap(fd, 4096)
        m[0] = 1
    assert as_user(4000, 5000, more_fault) == "signal SIGBUS"
    assert kib("u", 4000) == 4 * 14 + 20, repquota("u")[1]
    # nor a copy-on-write: its copies are new space while it runs, though
    # it adds nothing in the end (XFS refuses it too, generic/328)
    with open(f"{d}/src", "rb") as s, open(f"{d}/cow", "wb") as c:
        clone(s.fileno(), c.fileno())
    os.chown(f"{d}/cow", 4000, 5000)  # root may take the user over the limit

    def cow():
        with open(f"{d}/cow", "r+b") as c:
            c.write(b"w" * 4096)
    r = as_user(4000, 5000, cow)
    assert r == "errno EDQUOT", r
    with open(f"{d}/cow", "rb") as c:
        assert c.read() == pattern(2, 64 * 1024)
    os.unlink(f"{d}/cow")
    assert kib("u", 4000) == 4 * 14 + 20, repquota("u")[1]
    # nor an unshare (fallocate UNSHARE_RANGE), charged its copies the
    # same way; root's goes through and, in the end, adds nothing either
    with open(f"{d}/src", "rb") as s, open(f"{d}/uns", "wb") as c:
        clone(s.fileno(), c.fileno())
    os.chown(f"{d}/uns", 4000, 5000)

    def unshare():
        fd = os.open(f"{d}/uns", os.O_RDWR)
        try:
            fallocate(fd, FALLOC_FL_UNSHARE_RANGE, 0, 64 * 1024)
        finally:
            os.close(fd)
    assert as_user(4000, 5000, unshare) == "errno EDQUOT"
    assert kib("u", 4000) == 4 * (14 + 16) + 20, repquota("u")[1]
    unshare()
    assert kib("u", 4000) == 4 * (14 + 16) + 20, repquota("u")[1]
    with open(f"{d}/uns", "rb") as c:
        assert c.read() == pattern(2, 64 * 1024)
    os.unlink(f"{d}/uns")
    assert kib("u", 4000) == 4 * 14 + 20, repquota("u")[1]
    # root is not limited: its write into the user's file is charged to it
    with open(f"{d}/free", "r+b") as f:
        f.write(b"r" * 4096)
    assert kib("u", 4000) == 4 * 15 + 20, repquota("u")[1]

    # every charge was settled exactly, and quotacheck counts the same
    assert "quota: inode" not in dmesg()[len(log0):], dmesg()[len(log0):]
    assert_quotacheck_agrees()
    plain_mount()


def test_long_symlink_and_dedupe_charged():
    # IDs of their own (test_quota_on_at_mount_and_recount counts 4100/5100)
    d = quota_on_with_dir("lnk")
    log0 = dmesg()
    target = "t" * 200  # longer than the inode holds: a data block

    def links():
        os.symlink("s" * 100, f"{d}/short")  # in the inode: no block
        os.symlink(target, f"{d}/long")
    assert as_user(4200, 5200, links) == "ok None"
    assert (kib("u", 4200), inodes("u", 4200)) == (4, 2), repquota("u")[1]
    assert (kib("g", 5200), inodes("g", 5200)) == (4, 2), repquota("g")[1]
    assert os.lstat(f"{d}/long").st_blocks == 8
    assert os.readlink(f"{d}/long") == target
    # at the hard block limit a long one is EDQUOT and leaves nothing, a
    # short one (no block) is made
    gtest.sh(f"setquota -u 4200 0 4 0 0 {gtest.MNT}")

    def long2():
        os.symlink(target, f"{d}/long2")
    assert as_user(4200, 5200, long2) == "errno EDQUOT"
    assert not os.path.lexists(f"{d}/long2")
    assert as_user(4200, 5200, lambda: os.symlink("x", f"{d}/short2")) == "ok None"
    assert (kib("u", 4200), inodes("u", 4200)) == (4, 3), repquota("u")[1]
    os.unlink(f"{d}/long")  # gives back its inode and its block
    assert (kib("u", 4200), inodes("u", 4200)) == (0, 2), repquota("u")[1]
    gtest.sh(f"setquota -u 4200 0 0 0 0 {gtest.MNT}")

    # A dedupe into a file its owner opened read-only (allowed to the
    # owner) whose dquots nobody attached since it was read back in: an
    # unwritten block (reads as zeros) deduped against a hole becomes a
    # hole, and the owner gets the block back.
    def files():
        with open(f"{d}/zeros", "wb") as f:
            fallocate(f.fileno(), 0, 0, 4096)
        with open(f"{d}/sparse", "wb") as f:
            f.truncate(4096)
    assert as_user(4200, 5200, files) == "ok None"
    assert kib("u", 4200) == 4, repquota("u")[1]
    gtest.drop_caches()  # evicts both: re-read without dquots

    def dedupe_ro():
        z = os.open(f"{d}/zeros", os.O_RDONLY)
        s = os.open(f"{d}/sparse", os.O_RDONLY)
        return dedupe(s, 0, 4096, z, 0)
    r = as_user(4200, 5200, dedupe_ro)
    assert r == "ok (0, 4096)", r
    assert os.stat(f"{d}/zeros").st_blocks == 0
    assert (kib("u", 4200), kib("g", 5200)) == (0, 0), repquota("u")[1] + repquota("g")[1]

    assert "quota: inode" not in dmesg()[len(log0):], dmesg()[len(log0):]
    assert_quotacheck_agrees()
    plain_mount()


def test_unsettled_charge_settled_at_evict():
    """A change whose read back of the block count fails (a media error)
    leaves the inode's charge unsettled until something re-reads it; an
    inode evicted first must settle it, or its owner keeps the difference.
    Every fault-injection site one copy-on-write block write reaches is
    failed in turn (/proc/thread-self/fail-nth: ferrofs's fail_media_load
    loads and the slab allocations failslab may fail); after each, the
    inode is evicted and the owner's usage must be the blocks on the media.
    A copy-on-write is charged its copies while it runs and settles at no
    growth, so an unsettled charge shows as the copies too many (16 KiB
    here: the four-block file is one copy-on-write unit)."""
    dbg = "/sys/kernel/debug"
    assert os.path.isdir(f"{dbg}/ferrofs/fail_media_load"), "no fail_media_load (CONFIG_FAULT_INJECTION_DEBUG_FS)"
    for a in ("ferrofs/fail_media_load", "failslab"):
        if os.path.isdir(f"{dbg}/{a}"):
            with open(f"{dbg}/{a}/verbose", "w") as f:
                f.write("0")  # fail-nth dumps a stack per failure otherwise
    d = quota_on_with_dir("uns")
    src, dst = f"{d}/src", f"{d}/dst"
    with open(src, "wb") as f:
        f.write(pattern(11, 4 * 4096))
    open(dst, "wb").close()
    for p in (src, dst):
        os.chown(p, 4400, 5400)
    log0 = dmesg()
    seen = {}
    n = 0
    while True:
        n += 1
        assert n < 5000, f"a one-block copy-on-write reached {n} fault sites"
        s, t = os.open(src, os.O_RDONLY), os.open(dst, os.O_RDWR)
        clone(s, t)  # shares all four blocks again
        os.close(s)
        nth = os.open("/proc/thread-self/fail-nth", os.O_RDWR)
        os.write(nth, str(n).encode())
        try:
            os.pwrite(t, b"x" * 4096, 0)
            res = "ok"
        except OSError as e:
            res = errno.errorcode[e.errno]
        left = int(os.pread(nth, 32, 0))  # 0: the n-th site failed
        os.write(nth, b"0")
        os.close(nth)
        os.close(t)
        assert res in ("ok", "EIO", "ENOMEM"), (n, res)
        seen[(res, left == 0)] = seen.get((res, left == 0), 0) + 1
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("2")  # evicts dst: nothing re-read it since the write
        on_media = (os.stat(src).st_blocks + os.stat(dst).st_blocks) * 512
        assert used_bytes(USRQUOTA, 4400) == on_media, (n, res, repquota("u")[1], on_media, dmesg()[len(log0):][-1000:])
        if left:
            break  # the write ran to its end below the n-th site: all were tried
    print(f"fail-nth: {n} sites, (outcome, a site failed): count {seen}")
    # the sweep reached sites whose failure fails the write (EIO) and sites
    # it survives (mostly the whole-unit copy, which falls back to a copy
    # block by block; the read back after a commit is among them)
    assert seen.get(("EIO", True)) and seen.get(("ok", True)), seen
    assert "quota: inode" not in dmesg()[len(log0):]
    assert_quotacheck_agrees()
    plain_mount()


def test_quota_on_at_mount_and_recount():
    d = quota_on_with_dir("mnt")

    def files(tag, n):
        def make():
            for i in range(n):
                with open(f"{d}/{tag}{i}", "wb") as f:
                    f.write(pattern(i, (i + 1) * 4096))
        return make
    assert as_user(4100, 5100, files("a", 4)) == "ok None"  # 10 blocks, 4 inodes
    gtest.sh(f"setquota -u 4100 0 {4 * 10 + 8} 0 0 {gtest.MNT}")
    counted = usage_table()
    assert counted["u"][4100] == (40, 4) and counted["g"][5100] == (40, 4), counted

    # an unmount and a mount with the options: quota is on at once, with
    # the limits, and a quotaon on top of it is no error
    log0 = dmesg()
    gtest.mount_with("usrquota,grpquota")
    log = dmesg()[len(log0):]
    assert re.search(r"ferrofs \(pmem\d+\): quota on \(usrquota,grpquota\), usage recounted: \d+ inodes, \d+ IDs", log), log
    assert quota_state("u") == "on" and quota_state("g") == "on"
    assert usage_table() == counted, (counted, usage_table())
    gtest.sh(f"quotaon -ug {gtest.MNT}")
    assert as_user(4100, 5100, files("b", 3)) == "errno EDQUOT"  # 6 blocks fit under 48 KiB
    assert kib("u", 4100) == 48, repquota("u")[1]

    # changes made while no quota was on (a mount without the options) are
    # in the usage after the next mount with them: it is recounted
    plain_usage = usage_table()
    gtest.mount_with("")
    assert as_user(4100, 5100, files("c", 5)) == "ok None"  # over the limit: nothing counts
    os.unlink(f"{d}/a0")
    os.unlink(f"{d}/b0")
    gtest.mount_with("usrquota,grpquota")
    after = usage_table()
    owned = sum(1 for f in os.listdir(d) if os.stat(f"{d}/{f}").st_uid == 4100)
    assert after != plain_usage and after["u"][4100][1] == owned, (after, owned)
    assert_quotacheck_agrees()

    # a shutdown loses the dquots not yet written back: the next mount's
    # recount puts back what the filesystem holds
    def more():
        for i in range(3):
            os.unlink(f"{d}/c{i}")
    assert as_user(4100, 5100, more) == "ok None"
    truth = usage_table()
    fd = os.open(gtest.MNT, os.O_RDONLY)
    fcntl.ioctl(fd, FS_IOC_SHUTDOWN, struct.pack("I", NOLOGFLUSH))
    os.close(fd)
    gtest.mount_with("usrquota,grpquota")
    assert usage_table() == truth, (truth, usage_table())
    assert_quotacheck_agrees()

    # one type's option: only that type; a type without its file stays off
    gtest.mount_with("usrquota")
    assert quota_state("u") == "on" and quota_state("g") == "off"
    os.chdir("/")
    gtest.sh(f"quotaoff -u {gtest.MNT}")
    os.unlink(f"{gtest.MNT}/aquota.user")
    log0 = dmesg()
    gtest.mount_with("usrquota,grpquota")
    log = dmesg()[len(log0):]
    assert quota_state("u") == "off" and quota_state("g") == "on", log
    assert re.search(r"ferrofs \(pmem\d+\): user quota stays off: there is no /aquota.user", log), log
    # read-only, then read-write: the files come on without a recount
    gtest.mount_with("ro,usrquota,grpquota")
    assert quota_state("g") == "off"
    log0 = dmesg()
    gtest.sh(f"mount -o remount,rw {gtest.MNT}")
    log = dmesg()[len(log0):]
    assert quota_state("g") == "on", log
    assert "quota on (grpquota) with the usage the quota files recorded" in log, log
    plain_mount()


def test_shutdown_with_quota_on():
    gtest.mount_with("usrquota,grpquota")
    gtest.sh(f"quotacheck -cug {gtest.MNT}")
    gtest.sh(f"quotaon -ug {gtest.MNT}")
    gtest.sh(f"setquota -u 99 10 20 0 0 {gtest.MNT}")
    fd = os.open(gtest.MNT, os.O_RDONLY)
    fcntl.ioctl(fd, FS_IOC_SHUTDOWN, struct.pack("I", NOLOGFLUSH))
    os.close(fd)
    log0 = dmesg()
    # the quota layer's last writes fail (EIO, logged), the unmount does not
    gtest.umount()
    log = dmesg()[len(log0):]
    assert "unmounted" in log, log
    r = subprocess.run(["fsck.ferrofs", "-n", gtest.DEV], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    gtest.mount()
    plain_mount()


if __name__ == "__main__":
    gtest.main(globals())
