#!/usr/bin/env python3
"""LSM labels of new inodes (security_inode_init_security), with Smack on
(this suite's VM boots with lsm=smack; scripts/test).

Smack labels each new inode with its creator's label. The label is stored
as security.SMACK64 by the filesystem; one that is not stored lives in
Smack's memory only, and after a remount the inode reads as the mount's
default ("_"). So every kind of inode ferrofs creates (file, directory,
symlink, fifo, device, O_TMPFILE, the whiteout of RENAME_WHITEOUT) must
carry its creator's label after a remount. A create whose label cannot be
stored fails and leaves nothing behind: no name, no inode.
"""
import ctypes
import errno
import os
import stat
import sys

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import _libc

XATTR = "security.SMACK64"
AT_FDCWD = -100
RENAME_WHITEOUT = 4
DBG = "/sys/kernel/debug/failslab"


def active_lsms():
    if not os.path.exists("/sys/kernel/security/lsm"):
        gtest.sh("mount -t securityfs securityfs /sys/kernel/security")
    with open("/sys/kernel/security/lsm") as f:
        return f.read().strip().split(",")


class TaskLabel:
    """Runs the block with this thread's Smack label set to `label` (root
    has CAP_MAC_ADMIN to change it and CAP_MAC_OVERRIDE to go on accessing
    what is labelled "_")."""

    def __init__(self, label):
        self.label = label

    @staticmethod
    def set(label):
        with open("/proc/thread-self/attr/current", "w") as f:
            f.write(label)

    def __enter__(self):
        self.set(self.label)

    def __exit__(self, *exc):
        self.set("_")


def label_of(path):
    return os.getxattr(path, XATTR, follow_symlinks=False).decode().rstrip("\0")


def renameat2(old, new, flags):
    if _libc.renameat2(AT_FDCWD, old.encode(), AT_FDCWD, new.encode(), ctypes.c_uint(flags)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), old)


def make_every_kind(prefix):
    """One inode of every kind ferrofs creates, named prefix-KIND."""
    names = {}
    fd = os.open(f"{prefix}-file", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"data")
    os.close(fd)
    names["file"] = f"{prefix}-file"
    os.mkdir(f"{prefix}-dir")
    names["dir"] = f"{prefix}-dir"
    os.symlink("target", f"{prefix}-symlink")
    names["symlink"] = f"{prefix}-symlink"
    os.mkfifo(f"{prefix}-fifo")
    names["fifo"] = f"{prefix}-fifo"
    os.mknod(f"{prefix}-chr", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    names["chr"] = f"{prefix}-chr"
    fd = os.open(".", os.O_TMPFILE | os.O_WRONLY, 0o600)
    os.write(fd, b"tmp")
    os.link(f"/proc/self/fd/{fd}", f"{prefix}-tmpfile", follow_symlinks=True)
    os.close(fd)
    names["tmpfile"] = f"{prefix}-tmpfile"
    open(f"{prefix}-moved", "w").close()
    renameat2(f"{prefix}-moved", f"{prefix}-moved2", RENAME_WHITEOUT)
    st = os.lstat(f"{prefix}-moved")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0, "no whiteout"
    names["whiteout"] = f"{prefix}-moved"
    return names


def inodes_used():
    st = os.statvfs(".")
    return st.f_files - st.f_ffree


def test_smack_is_on():
    lsms = active_lsms()
    assert "smack" in lsms, f"this suite needs Smack (boot with lsm=smack): {lsms}"
    with open("/proc/thread-self/attr/current") as f:
        assert f.read().strip("\0\n") == "_"


def test_labels_survive_a_remount():
    made = {}
    for label in ("FerroA", "FerroB"):
        with TaskLabel(label):
            made[label] = make_every_kind(label)
    # the renamed file keeps the label it was made with
    want = {p: label for label, names in made.items() for p in names.values()}
    want.update({f"{label}-moved2": label for label in made})
    for check in ("now", "after drop_caches", "after a remount"):
        if check == "after drop_caches":
            gtest.drop_caches()
        elif check == "after a remount":
            gtest.remount()
        got = {p: label_of(p) for p in want}
        bad = {p: (got[p], w) for p, w in want.items() if got[p] != w}
        assert not bad, f"{check}: (label, want) {bad}"
    # ferrofs lists what it stores: the label is an attribute on the media
    for p in ("FerroA-file", "FerroA-dir", "FerroB-tmpfile"):
        assert XATTR in os.listxattr(p), (p, os.listxattr(p))


def test_a_create_whose_label_fails_leaves_nothing():
    """failslab for this thread only, the allocation budget swept so the
    failure lands at each allocation of a create in turn, among them
    Smack's copy of the label and the LSM's attribute array, which come
    after the engine's create: a create either succeeds with its label or
    fails with ENOMEM and leaves no name and no inode."""
    if not os.path.isdir(DBG):
        raise AssertionError("no /sys/kernel/debug/failslab (CONFIG_FAILSLAB)")

    def wr(name, v):
        with open(f"{DBG}/{name}", "w") as f:
            f.write(str(v))

    for name, v in (("task-filter", "Y"), ("verbose", 0), ("probability", 100), ("interval", 1),
                    ("times", 0), ("space", 0), ("ignore-gfp-wait", "N")):
        wr(name, v)
    used0 = inodes_used()
    ok, failed, fired = [], 0, 0
    with TaskLabel("FerroC"):
        for space in range(0, 8192, 64):
            name = f"c{space}"
            wr("space", space)
            wr("times", 1)
            with open("/proc/thread-self/make-it-fail", "w") as f:
                f.write("1")
            try:
                fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except OSError as e:
                err = e.errno
            else:
                err = 0
                os.close(fd)
            finally:
                with open("/proc/thread-self/make-it-fail", "w") as f:
                    f.write("0")
            with open(f"{DBG}/times") as f:
                fired += 1 - int(f.read())
            wr("times", 0)
            if err:
                assert err == errno.ENOMEM, (space, errno.errorcode.get(err))
                assert not os.path.lexists(name), f"space {space}: ENOMEM, but {name} exists"
                failed += 1
            else:
                ok.append(name)
    assert failed > 0 and ok, (failed, len(ok), fired)
    gtest.remount()
    bad = [n for n in ok if label_of(n) != "FerroC"]
    assert not bad, bad
    for n in ok:
        os.unlink(n)
    gtest.drop_caches()
    assert inodes_used() == used0, f"inodes leaked: {inodes_used() - used0}"


if __name__ == "__main__":
    gtest.main(globals())
