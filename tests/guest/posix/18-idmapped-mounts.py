#!/usr/bin/env python3
"""Idmapped mounts (mount_setattr MOUNT_ATTR_IDMAP) of a ferrofs directory.

The mount's idmap comes from a user namespace whose uid and gid 0..999 are
10000..10999 outside it. Through the idmapped mount an owner N on the media
shows as 10000 + N, and an owner the caller gives (create, chown, ACL
entries, a whiteout's owner) is stored as that minus 10000; an owner outside
the map cannot be stored (EOVERFLOW) and shows as the overflow id. What is
stored is checked through the plain mount, after a remount too.
"""
import ctypes
import os
import stat
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import AT_EMPTY_PATH, AT_FDCWD, RENAME_WHITEOUT, _libc, expect_errno, link_fd, renameat2

SYS_open_tree, SYS_move_mount, SYS_mount_setattr = 428, 429, 442
OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC = 1, os.O_CLOEXEC
AT_RECURSIVE = 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_IDMAP = 0x00100000
CLONE_NEWUSER = 0x10000000
BASE, COUNT = 10000, 1000
IDM = "/tmp/idmapped"


class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def check(r, what):
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")
    return r


def userns_fd():
    """An fd of a user namespace mapping ids 0..COUNT-1 inside to BASE.. outside."""
    ready_r, ready_w = os.pipe()
    hold_r, hold_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        os.close(hold_w)
        ok = _libc.unshare(CLONE_NEWUSER) == 0
        os.write(ready_w, b"1" if ok else b"0")
        os.read(hold_r, 1)
        os._exit(0)
    os.close(ready_w)
    os.close(hold_r)
    try:
        assert os.read(ready_r, 1) == b"1", "unshare(CLONE_NEWUSER) failed (CONFIG_USER_NS?)"
        for m in ("uid_map", "gid_map"):
            with open(f"/proc/{pid}/{m}", "w") as f:
                f.write(f"0 {BASE} {COUNT}\n")
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(hold_w)
        os.close(ready_r)
        os.waitpid(pid, 0)


def idmapped_mount(src, target):
    """An idmapped bind mount of src at target (open_tree, mount_setattr, move_mount)."""
    os.makedirs(target, exist_ok=True)
    tree = check(_libc.syscall(SYS_open_tree, AT_FDCWD, src.encode(),
                               OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE), "open_tree")
    ns = userns_fd()
    try:
        attr = MountAttr(MOUNT_ATTR_IDMAP, 0, 0, ns)
        check(_libc.syscall(SYS_mount_setattr, tree, b"", AT_EMPTY_PATH | AT_RECURSIVE,
                            ctypes.byref(attr), ctypes.sizeof(attr)), "mount_setattr(MOUNT_ATTR_IDMAP)")
        check(_libc.syscall(SYS_move_mount, tree, b"", AT_FDCWD, target.encode(), MOVE_MOUNT_F_EMPTY_PATH), "move_mount")
    finally:
        os.close(ns)
        os.close(tree)


def owner(path):
    st = os.lstat(path)
    return st.st_uid, st.st_gid


def as_user(uid, gid, fn):
    """Runs fn in a child with fsuid/fsgid (and real/effective ids) uid/gid."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            fn()
            os._exit(0)
        except BaseException:  # noqa: BLE001 - report anything in the child
            import traceback
            traceback.print_exc()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"{getattr(fn, '__name__', fn)} failed as {uid}:{gid}"


def acl_users(path):
    out = subprocess.run(["getfacl", "-n", "-p", path], capture_output=True, text=True, check=True).stdout
    return sorted(ln for ln in out.splitlines() if ln.startswith("user:") and not ln.startswith("user::"))


def test_idmapped_mount():
    d = os.path.join(os.getcwd(), "shared")
    os.mkdir(d)
    os.chmod(d, 0o777)
    with open(f"{d}/root-file", "w") as f:
        f.write("r")
    with open(f"{d}/five", "w") as f:
        f.write("5")
    os.chown(f"{d}/five", 5, 6)
    with open(f"{d}/outside", "w") as f:
        f.write("o")
    os.chown(f"{d}/outside", 4000, 4000)
    idmapped_mount(d, IDM)
    try:
        # media owner N shows as BASE + N; one outside the map as overflow
        assert owner(f"{IDM}/root-file") == (BASE, BASE), owner(f"{IDM}/root-file")
        assert owner(f"{IDM}/five") == (BASE + 5, BASE + 6), owner(f"{IDM}/five")
        assert owner(f"{IDM}/outside") == (65534, 65534), owner(f"{IDM}/outside")
        assert owner(f"{d}/five") == (5, 6)

        # creates by a caller mapped to media owner 7
        def make():
            with open(f"{IDM}/new", "w") as f:
                f.write("n")
            os.mkdir(f"{IDM}/newdir")
            os.symlink("target", f"{IDM}/newlink")
            os.mkfifo(f"{IDM}/newfifo")
            fd = os.open(IDM, os.O_TMPFILE | os.O_WRONLY, 0o600)
            link_fd(fd, f"{IDM}/newtmp")
            os.close(fd)
            with open(f"{IDM}/moved", "w") as f:
                f.write("m")
            renameat2(f"{IDM}/moved", f"{IDM}/moved2", RENAME_WHITEOUT)
        as_user(BASE + 7, BASE + 8, make)
        made = ("new", "newdir", "newlink", "newfifo", "newtmp", "moved", "moved2")
        for n in made:
            assert owner(f"{d}/{n}") == (7, 8), (n, owner(f"{d}/{n}"))
            assert owner(f"{IDM}/{n}") == (BASE + 7, BASE + 8), (n, owner(f"{IDM}/{n}"))
        assert stat.S_ISCHR(os.lstat(f"{d}/moved").st_mode), "no whiteout"

        # a caller outside the map cannot create here
        def refused():
            expect_errno("EOVERFLOW", os.open, f"{IDM}/nope", os.O_CREAT | os.O_WRONLY, 0o644)
        as_user(4000, 4000, refused)
        assert not os.path.lexists(f"{d}/nope")

        # chown through the mount stores the unmapped owner; outside: EOVERFLOW
        os.chown(f"{IDM}/root-file", BASE + 9, BASE + 10)
        assert owner(f"{d}/root-file") == (9, 10)
        expect_errno("EOVERFLOW", os.chown, f"{IDM}/five", 3, 3)
        assert owner(f"{d}/five") == (5, 6)
        # the owner of a mapped file may chmod it through the mount
        as_user(BASE + 7, BASE + 8, lambda: os.chmod(f"{IDM}/new", 0o600))
        assert stat.S_IMODE(os.stat(f"{d}/new").st_mode) == 0o600

        # ACL entries: stored unmapped, shown mapped
        subprocess.run(["setfacl", "-m", f"u:{BASE + 3}:rw", f"{IDM}/five"], check=True)
        assert acl_users(f"{d}/five") == ["user:3:rw-"], acl_users(f"{d}/five")
        assert acl_users(f"{IDM}/five") == [f"user:{BASE + 3}:rw-"], acl_users(f"{IDM}/five")
    finally:
        gtest.sh(f"umount {IDM}")
    # what was stored, from the media
    gtest.remount()
    for n in made:
        assert owner(f"{d}/{n}") == (7, 8), (n, owner(f"{d}/{n}"))
    assert owner(f"{d}/root-file") == (9, 10)
    assert acl_users(f"{d}/five") == ["user:3:rw-"]


def test_idmapped_mount_of_the_root():
    # the whole filesystem, and a fresh mount's root owned by media 0
    idmapped_mount(gtest.MNT, IDM)
    try:
        assert owner(IDM) == (BASE, BASE), owner(IDM)
    finally:
        gtest.sh(f"umount {IDM}")


if __name__ == "__main__":
    gtest.main(globals())
