#!/usr/bin/env python3
"""LSM labels of new inodes (security_inode_init_security), under the LSM
this suite's VM boots with: Smack (lsm=smack) or SELinux (vm-run --selinux,
with a policy that labels ferrofs by xattrs); scripts/test boots both and
names the one it expects in FERROFS_T_LSM.

An LSM gives each new inode a label, which the filesystem stores as an
xattr (security.SMACK64, security.selinux); one that is not stored lives in
the LSM's memory only, and after a remount the inode reads as the mount's
default ("_" for Smack, file_t for SELinux). So every kind of inode ferrofs
creates (file, directory, symlink, fifo, device, O_TMPFILE, the whiteout of
RENAME_WHITEOUT) must carry the label its creator asked for after a remount.
A create whose label cannot be stored fails and leaves nothing behind: no
name, no inode.
"""
import errno
import os
import stat
import sys

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import RENAME_WHITEOUT, link_fd, renameat2

DBG = "/sys/kernel/debug/failslab"


def active_lsms():
    if not os.path.exists("/sys/kernel/security/lsm"):
        gtest.sh("mount -t securityfs securityfs /sys/kernel/security")
    with open("/sys/kernel/security/lsm") as f:
        return f.read().strip().split(",")


class Smack:
    """Smack labels a new inode with its creator's label: the thread's
    own label is set (root has CAP_MAC_ADMIN to change it and
    CAP_MAC_OVERRIDE to go on accessing what is labelled "_")."""
    XATTR = "security.SMACK64"
    LABELS = ("FerroA", "FerroB", "FerroC")
    ATTR = "/proc/thread-self/attr/current"
    RESET = "_"

    @staticmethod
    def check():
        with open(Smack.ATTR) as f:
            assert f.read().strip("\0\n") == "_"


class SELinux:
    """SELinux labels a new inode with the thread's fscreate context when
    one is set (otherwise by the policy's type transitions); the kernel is
    permissive, so any valid context of the policy will do."""
    XATTR = "security.selinux"
    LABELS = ("system_u:object_r:tmp_t:s0", "system_u:object_r:etc_t:s0", "system_u:object_r:var_t:s0")
    ATTR = "/proc/thread-self/attr/fscreate"
    RESET = "\n"  # clears fscreate

    @staticmethod
    def check():
        # a policy is loaded (vm-run --selinux): without one SELinux labels
        # nothing and every label below would be refused
        with open("/sys/fs/selinux/policyvers") as f:
            assert int(f.read()) > 0
        with open("/proc/thread-self/attr/current") as f:
            assert f.read().strip("\0\n").startswith("system_u:system_r:kernel_t")


LSM_NAME = os.environ.get("FERROFS_T_LSM", "smack")
LSM = {"smack": Smack, "selinux": SELinux}[LSM_NAME]


class TaskLabel:
    """Runs the block with new inodes of this thread labelled `label`."""

    def __init__(self, label):
        self.label = label

    @staticmethod
    def set(label):
        with open(LSM.ATTR, "w") as f:
            f.write(label)

    def __enter__(self):
        self.set(self.label)

    def __exit__(self, *exc):
        self.set(LSM.RESET)


def label_of(path):
    return os.getxattr(path, LSM.XATTR, follow_symlinks=False).decode().rstrip("\0")


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
    link_fd(fd, f"{prefix}-tmpfile")
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


def test_the_lsm_is_on():
    lsms = active_lsms()
    assert LSM_NAME in lsms, f"this run needs {LSM_NAME} (scripts/test boots it): {lsms}"
    LSM.check()


def test_labels_survive_a_remount():
    made = {}
    for prefix, label in zip("AB", LSM.LABELS):
        with TaskLabel(label):
            made[(prefix, label)] = make_every_kind(prefix)
    # the renamed file keeps the label it was made with
    want = {p: label for (_, label), names in made.items() for p in names.values()}
    want.update({f"{prefix}-moved2": label for prefix, label in made})
    for check in ("now", "after drop_caches", "after a remount"):
        if check == "after drop_caches":
            gtest.drop_caches()
        elif check == "after a remount":
            gtest.remount()
        got = {p: label_of(p) for p in want}
        bad = {p: (got[p], w) for p, w in want.items() if got[p] != w}
        assert not bad, f"{check}: (label, want) {bad}"
    # ferrofs lists what it stores: the label is an attribute on the media
    for p in ("A-file", "A-dir", "B-tmpfile"):
        assert LSM.XATTR in os.listxattr(p), (p, os.listxattr(p))


def test_a_create_whose_label_fails_leaves_nothing():
    """Fault injection at each allocation of a create in turn (fail-nth:
    the Nth allocation of this thread fails), among them the LSM's
    attribute array and the LSM's copy of the label, which come after the
    engine's create: a create either succeeds with its label or fails with
    ENOMEM (EIO for a media load) and leaves no name and no inode."""
    if not os.path.isdir(DBG):
        raise AssertionError("no /sys/kernel/debug/failslab (CONFIG_FAILSLAB)")
    with open(f"{DBG}/ignore-gfp-wait", "w") as f:
        f.write("N")  # fail GFP_KERNEL and GFP_NOFS allocations too
    # fail-nth counts every fault point of the task, ferrofs's own media
    # loads (EIO) included: no stack trace per injected fault
    for attr in ("failslab", "fail_page_alloc", "ferrofs/fail_media_load"):
        if os.path.exists(f"/sys/kernel/debug/{attr}/verbose"):
            with open(f"/sys/kernel/debug/{attr}/verbose", "w") as f:
                f.write("0")
    # a create before any fault: the inode number the first create in
    # the loop is measured from
    with open("c0", "w"):
        pass
    used0 = inodes_used()
    ok, failed = ["c0"], 0
    # armed and read back through one open file: an open() in between
    # would itself allocate, and take the fault meant for the create
    nth = os.open("/proc/thread-self/fail-nth", os.O_RDWR)
    with TaskLabel(LSM.LABELS[2]):
        for n in range(1, 1000):
            name = f"c{n}"
            os.pwrite(nth, str(n).encode(), 0)
            try:
                fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except OSError as e:
                err = e.errno
            else:
                err = 0
            left = int(os.pread(nth, 16, 0).decode().strip("\0\n") or 0)
            os.pwrite(nth, b"0", 0)
            if err:
                assert err in (errno.ENOMEM, errno.EIO), (n, errno.errorcode.get(err))
                assert not os.path.lexists(name), f"fault {n}: {errno.errorcode[err]}, but {name} exists"
                failed += 1
            else:
                os.close(fd)
                ok.append(name)
                if left:
                    break  # the create needed fewer than n allocations: all were tried
    os.close(nth)
    assert failed > 0 and len(ok) > 1, (failed, len(ok))
    # The engine never reuses an inode number, so a gap between two
    # successful creates is a create the engine made and the label's
    # failure undid: the path this test is about was taken.
    inos = [os.stat(n).st_ino for n in ok]
    undone = sum(b - a - 1 for a, b in zip(inos, inos[1:]))
    print(f"fail-nth: {len(ok) - 1 + failed} creates, {failed} failed, {undone} undone after the engine's create")
    assert all(b > a for a, b in zip(inos, inos[1:])), inos
    assert undone > 0, "no fault landed after the engine's create"
    gtest.remount()
    # a failed create's negative dentry hides a name the media still has:
    # only a fresh mount's listing shows that none is left
    left = sorted(n for n in os.listdir(".") if n[0] == "c" and n[1:].isdigit() and n not in ok)
    assert not left, f"failed creates left names: {left}"
    bad = [n for n in ok[1:] if label_of(n) != LSM.LABELS[2]]
    assert not bad, bad
    for n in ok:
        os.unlink(n)
    gtest.drop_caches()
    assert inodes_used() == used0 - 1, f"inodes leaked: {inodes_used() - used0 + 1}"


if __name__ == "__main__":
    gtest.main(globals())
