#!/usr/bin/env python3
"""Project quota (Documentation/quota-plan.md, step 7). `-o prjquota` makes
/aquota.project and turns project quota on at mount. Project IDs and
PROJINHERIT go through FS_IOC_FSGETXATTR/FSSETXATTR. New inodes inherit
them, and usage follows an ID change (the inode and all its blocks). Limits
set through quotactl (as xfs_quota does) give a user EDQUOT at the
project's hard limit. statfs inside a project directory reports the
project's share. Links and renames into another project fail with EXDEV.
IDs survive a remount, and the mount recounts what was written while
project quota was off. fsck stays clean."""
import ctypes
import ctypes.util
import errno
import fcntl
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import as_user, expect_errno, pattern, renameat2

FS_IOC_FSGETXATTR = 0x801C581F
FS_IOC_FSSETXATTR = 0x401C5820
FS_XFLAG_PROJINHERIT = 0x200
FSXATTR = "IIIII8x"  # xflags, extsize, nextents, projid, cowextsize
Q_GETFMT, Q_GETQUOTA, Q_SETQUOTA = 0x800004, 0x800007, 0x800008
PRJQUOTA = 2
QFMT_VFS_V1 = 4
QIF_BLIMITS, QIF_ILIMITS = 1, 4
DQBLK = "QQQQQQQQI4x"  # struct if_dqblk
RENAME_EXCHANGE = 2
USER = (4000, 5000)

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def quotactl(cmd, qid, buf):
    """quotactl(2) of project quota on the test device; raises OSError."""
    if _libc.quotactl((cmd << 8) | PRJQUOTA, gtest.DEV.encode(), qid, buf) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def usage(projid):
    """(bytes, inodes) the kernel counts for a project."""
    buf = ctypes.create_string_buffer(struct.calcsize(DQBLK))
    quotactl(Q_GETQUOTA, projid, buf)
    v = struct.unpack(DQBLK, buf.raw)
    return v[2], v[5]


def set_limits(projid, bhard_kib=0, ihard=0):
    buf = ctypes.create_string_buffer(struct.pack(DQBLK, bhard_kib, 0, 0, ihard, 0, 0, 0, 0, QIF_BLIMITS | QIF_ILIMITS))
    quotactl(Q_SETQUOTA, projid, buf)


def getx(path):
    """(xflags, projid) of a file or directory."""
    fd = os.open(path, os.O_RDONLY)
    try:
        v = struct.unpack(FSXATTR, fcntl.ioctl(fd, FS_IOC_FSGETXATTR, bytes(struct.calcsize(FSXATTR))))
    finally:
        os.close(fd)
    return v[0], v[3]


def setproj(path, projid, inherit=None):
    """Sets the project ID (and PROJINHERIT if `inherit` says), as
    `xfs_quota -x -c 'project -s'` and `xfs_io -c chproj` do."""
    fd = os.open(path, os.O_RDONLY)
    try:
        v = list(struct.unpack(FSXATTR, fcntl.ioctl(fd, FS_IOC_FSGETXATTR, bytes(struct.calcsize(FSXATTR)))))
        v[3] = projid
        if inherit is not None:
            v[0] = (v[0] | FS_XFLAG_PROJINHERIT) if inherit else (v[0] & ~FS_XFLAG_PROJINHERIT)
        fcntl.ioctl(fd, FS_IOC_FSSETXATTR, struct.pack(FSXATTR, *v))
    finally:
        os.close(fd)


def blocks(path):
    return os.lstat(path).st_blocks * 512


def project_dir(name, projid):
    """A world-writable PROJINHERIT directory of project `projid`."""
    d = f"{gtest.MNT}/{name}"
    os.mkdir(d)
    os.chmod(d, 0o777)
    setproj(d, projid, inherit=True)
    return d


def test_prjquota_mount_makes_and_loads_the_file():
    # (other tests may have made it already: start without one)
    gtest.mount_with("")
    if os.path.exists(f"{gtest.MNT}/aquota.project"):
        os.unlink(f"{gtest.MNT}/aquota.project")
    gtest.sh("dmesg -C")
    gtest.mount_with("prjquota")
    assert "prjquota" in [l for l in open("/proc/mounts") if f" {gtest.MNT} " in l][-1].split()[3].split(",")
    f = f"{gtest.MNT}/aquota.project"
    st = os.stat(f)
    # two 1 KiB blocks made, and as many more as the quota layer has
    # written since (the recount stores ID 0)
    assert st.st_size >= 2048 and st.st_size % 1024 == 0, st
    assert (st.st_uid, st.st_mode & 0o7777) == (0, 0o600), st
    log = gtest.sh("dmesg")
    assert "created /aquota.project for project quota" in log, log
    assert "quota on (prjquota), usage recounted" in log, log
    fmt = ctypes.c_uint32()
    quotactl(Q_GETFMT, 0, ctypes.byref(fmt))
    assert fmt.value == QFMT_VFS_V1, fmt.value
    # loaded: immutable to users as every loaded quota file is
    expect_errno("EPERM", os.open, f, os.O_WRONLY)
    # the next mount loads the same file, and says nothing of creating it
    gtest.sh("dmesg -C")
    gtest.mount_with("prjquota")
    assert "created /aquota.project" not in gtest.sh("dmesg")
    assert os.stat(f).st_ino == st.st_ino
    # an empty file, what a crash between its creation and its header
    # leaves, is finished and loaded
    gtest.mount_with("")
    os.unlink(f)
    open(f, "w").close()
    gtest.mount_with("prjquota")
    assert os.stat(f).st_size >= 2048
    quotactl(Q_GETFMT, 0, ctypes.byref(fmt))
    assert fmt.value == QFMT_VFS_V1, fmt.value
    # a file that is not a quota file: project quota stays off, the mount
    # goes on and the kernel log says why
    gtest.mount_with("")
    os.unlink(f)
    with open(f, "wb") as g:
        g.write(b"not a quota file" * 256)
    gtest.sh("dmesg -C")
    gtest.mount_with("prjquota")
    log = gtest.sh("dmesg")
    assert "project quota stays off: loading /aquota.project failed" in log, log
    try:
        quotactl(Q_GETFMT, 0, ctypes.byref(fmt))
        raise AssertionError("project quota is on with a bad file")
    except OSError as e:
        assert e.errno == errno.ESRCH, e
    gtest.mount_with("")
    os.unlink(f)


def test_ids_inherit_and_usage_follows():
    gtest.mount_with("prjquota")
    d = project_dir("p", 42)
    assert getx(d) == (FS_XFLAG_PROJINHERIT, 42), getx(d)
    with open(f"{d}/f", "wb") as f:
        f.write(pattern(1, 1 << 20))
    os.mkdir(f"{d}/sub")
    os.symlink("f", f"{d}/l")
    with open(f"{d}/sub/g", "wb") as f:
        f.write(pattern(2, 8192))
    assert getx(f"{d}/f") == (0, 42)
    assert getx(f"{d}/sub") == (FS_XFLAG_PROJINHERIT, 42), "subdirectories take the flag"
    assert getx(f"{d}/sub/g") == (0, 42)
    # 5 inodes: p, f, sub, l, g; every byte they map
    want = sum(blocks(f"{d}/{n}") for n in ("", "f", "sub", "l", "sub/g"))
    assert usage(42) == (want, 5), (usage(42), want)
    # PROJINHERIT on a file is dropped without an error, as on XFS
    setproj(f"{d}/f", 42, inherit=True)
    assert getx(f"{d}/f") == (0, 42)
    # a new ID takes the file's blocks and the inode along
    setproj(f"{d}/f", 43)
    assert getx(f"{d}/f") == (0, 43)
    assert usage(43) == (blocks(f"{d}/f"), 1), usage(43)
    assert usage(42) == (want - blocks(f"{d}/f"), 4), usage(42)
    # unlink gives it back
    os.unlink(f"{d}/f")
    assert usage(43) == (0, 0), usage(43)
    gtest.mount_with("")


def test_exdev_into_another_project():
    gtest.mount_with("prjquota")
    a, b = project_dir("a", 1), project_dir("b", 2)
    with open(f"{a}/fa", "wb") as f:
        f.write(b"a")
    with open(f"{b}/fb", "wb") as f:
        f.write(b"b")
    with open(f"{gtest.MNT}/outside", "wb") as f:
        f.write(b"o")
    expect_errno("EXDEV", os.link, f"{a}/fa", f"{b}/fa")
    expect_errno("EXDEV", os.rename, f"{a}/fa", f"{b}/fa")
    expect_errno("EXDEV", os.rename, f"{gtest.MNT}/outside", f"{a}/outside")
    expect_errno("EXDEV", renameat2, f"{a}/fa", f"{b}/fb", RENAME_EXCHANGE)
    # `mv` copies across projects instead, as it does across filesystems
    gtest.sh(f"mv {gtest.MNT}/outside {a}/outside")
    assert getx(f"{a}/outside") == (0, 1)
    # out of a project into a plain directory is allowed, and keeps the ID
    os.rename(f"{b}/fb", f"{gtest.MNT}/fb")
    assert getx(f"{gtest.MNT}/fb") == (0, 2)
    gtest.mount_with("")


def test_limits_statfs_and_edquot():
    gtest.mount_with("prjquota")
    d = project_dir("lim", 7)
    set_limits(7, bhard_kib=1024, ihard=4)
    st = os.statvfs(d)
    used = usage(7)[0] // 4096
    assert (st.f_blocks, st.f_bfree, st.f_bavail) == (256, 256 - used, 256 - used), st
    assert (st.f_files, st.f_ffree) == (4, 3), st  # the directory itself is one
    # outside the project statfs is the filesystem's
    assert os.statvfs(gtest.MNT).f_blocks > 256

    def fill():
        with open(f"{d}/big", "wb") as f:
            f.write(pattern(3, 2 << 20))

    assert as_user(*USER, fill) == "errno EDQUOT", "a user stops at the project's hard limit"
    assert usage(7)[0] <= 1 << 20, usage(7)

    def many():
        for i in range(4):
            open(f"{d}/n{i}", "w").close()

    assert as_user(*USER, many) == "errno EDQUOT", "and at its inode limit"
    assert usage(7)[1] == 4, usage(7)
    gtest.mount_with("")


def test_ids_survive_remount_and_usage_is_recounted():
    gtest.mount_with("prjquota")
    d = project_dir("keep", 9)
    with open(f"{d}/f", "wb") as f:
        f.write(pattern(4, 64 << 10))
    # written while project quota is off: the next prjquota mount counts it
    gtest.mount_with("")
    assert getx(d) == (FS_XFLAG_PROJINHERIT, 9)
    with open(f"{d}/g", "wb") as f:
        f.write(pattern(5, 128 << 10))
    assert getx(f"{d}/g") == (0, 9), "inheritance does not need quota on"
    gtest.sh("dmesg -C")
    gtest.mount_with("prjquota")
    assert "usage recounted" in gtest.sh("dmesg")
    want = sum(blocks(f"{d}/{n}") for n in ("", "f", "g"))
    assert usage(9) == (want, 3), (usage(9), want)
    gtest.mount_with("")
    r = subprocess.run(["umount", gtest.MNT], capture_output=True)
    assert r.returncode == 0, r
    r = subprocess.run(["fsck.ferrofs", "-n", gtest.DEV], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    gtest.mount()


if __name__ == "__main__":
    gtest.main(globals())
