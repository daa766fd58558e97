#!/usr/bin/env python3
"""RENAME_WHITEOUT (the source name becomes a character device 0/0, made
like a mknod in the source directory by the caller), and ferrofs as overlayfs's upper
layer: copy-up byte for byte, whiteouts for deleted and renamed lower
files, EXDEV for a lower directory rename (redirect_dir off)."""
import os
import stat
import sys

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT, expect_errno, kernel_log, mkfile, pattern, renameat2


def assert_whiteout(path, uid=0, gid=0, nlink=1):
    """A 0/0 character device, mode 0 (nlink None: any; overlayfs hard-links
    the whiteouts of deletions to one shared inode)."""
    st = os.lstat(path)
    got = (stat.S_ISCHR(st.st_mode), st.st_rdev, stat.S_IMODE(st.st_mode), st.st_nlink if nlink else None, st.st_size, st.st_uid, st.st_gid)
    assert got == (True, 0, 0, nlink, 0, uid, gid), f"{path}: {got}"


def content(path):
    with open(path, "rb") as f:
        return f.read()


def put(path, data):
    os.close(mkfile(path, data))


def test_rename_whiteout():
    a, c = pattern(1, 10000), pattern(2, 5000)
    put("a", a)
    put("c", c)
    ino_a = os.stat("a").st_ino
    renameat2("a", "b", RENAME_WHITEOUT)
    assert_whiteout("a")
    assert content("b") == a and os.stat("b").st_ino == ino_a
    assert os.lstat("a").st_ino not in (ino_a, os.stat("c").st_ino)
    # over an existing file: it is replaced, the source name is a whiteout
    renameat2("b", "c", RENAME_WHITEOUT)
    assert_whiteout("b")
    assert content("c") == a
    # with NOREPLACE: refused over a name (nothing changes), fine to a new one
    expect_errno("EEXIST", renameat2, "c", "a", RENAME_WHITEOUT | RENAME_NOREPLACE)
    assert content("c") == a and stat.S_ISCHR(os.lstat("a").st_mode)
    renameat2("c", "d", RENAME_WHITEOUT | RENAME_NOREPLACE)
    assert_whiteout("c")
    assert content("d") == a
    # with EXCHANGE: EINVAL
    expect_errno("EINVAL", renameat2, "d", "a", RENAME_WHITEOUT | RENAME_EXCHANGE)
    expect_errno("ENOENT", renameat2, "nope", "x", RENAME_WHITEOUT)
    # a directory with its contents, into another directory
    os.mkdir("dir")
    os.mkdir("into")
    put("dir/f", c)
    nl = os.stat(".").st_nlink
    renameat2("dir", "into/dir2", RENAME_WHITEOUT)
    assert_whiteout("dir")
    assert content("into/dir2/f") == c
    assert os.stat(".").st_nlink == nl - 1 and os.stat("into").st_nlink == 3
    assert os.path.samefile("into/dir2/..", "into")
    # a whiteout is an ordinary inode: renamed over, unlinked
    os.rename("d", "b")
    assert content("b") == a
    os.unlink("c")
    names = sorted(os.listdir("."))
    assert names == ["a", "b", "dir", "into"], names
    # persistent: from the engine after dropping caches and after a remount
    gtest.drop_caches()
    assert_whiteout("a")
    assert_whiteout("dir")
    gtest.remount()
    assert_whiteout("a")
    assert_whiteout("dir")
    assert content("b") == a and content("into/dir2/f") == c


def test_whiteout_owner():
    # the caller's fsgid, or the directory's group if it is setgid
    put("f", b"1")
    os.mkdir("sg")
    os.chown("sg", 0, 55)
    os.chmod("sg", 0o2775)
    put("sg/g", b"2")
    os.setegid(1234)
    try:
        renameat2("f", "f2", RENAME_WHITEOUT)
        renameat2("sg/g", "sg/g2", RENAME_WHITEOUT)
    finally:
        os.setegid(0)
    assert_whiteout("f", 0, 1234)
    assert_whiteout("sg/g", 0, 55)
    # no privilege needed (the VFS allows whiteouts since 5.8): nobody's own
    os.chmod(".", 0o777)
    put("h", b"3")
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(65534)
            os.setuid(65534)
            renameat2("h", "h2", RENAME_WHITEOUT)
            os._exit(0)
        except BaseException as e:  # noqa: BLE001 - report anything in the child
            print(repr(e))
            os._exit(1)
    assert os.waitpid(pid, 0)[1] == 0
    assert content("h2") == b"3"
    assert_whiteout("h", 65534, 65534)


def overlay_complaints(since):
    """overlayfs's kernel log lines about its upper layer or a missing feature."""
    words = ("upper", "support", "fail", "whiteout")
    return [ln for ln in kernel_log()[since:].splitlines() if "overlayfs" in ln and any(w in ln.lower() for w in words)]


def overlay_mount(lower, upper, work, merged):
    gtest.sh(f"mount -t overlay overlay -o lowerdir={lower},upperdir={upper},workdir={work} {merged}")


def test_overlay_upper():
    here = os.getcwd()
    lower, merged = "/tmp/ovl-lower", "/tmp/ovl-merged"
    upper, work = os.path.join(here, "upper"), os.path.join(here, "work")
    for d in (lower, merged):
        os.makedirs(d, exist_ok=True)
    os.mkdir(upper)
    os.mkdir(work)
    gtest.sh(f"mount -t tmpfs tmpfs {lower}")
    mounted = []
    try:
        keep, mod, over, src = pattern(10, 30000), pattern(11, 70000), pattern(12, 100), pattern(13, 9000)
        put(f"{lower}/keep", keep)
        put(f"{lower}/mod", mod)
        put(f"{lower}/del", b"gone")
        put(f"{lower}/over", over)
        os.mkdir(f"{lower}/ldir")
        put(f"{lower}/ldir/inner", b"inner")
        log0 = len(kernel_log())
        overlay_mount(lower, upper, work, merged)
        mounted.append(merged)
        # overlayfs says so when the upper layer lacks something it wants
        # (RENAME_WHITEOUT, tmpfile, xattrs, d_type, file handles)
        bad = overlay_complaints(log0)
        assert not bad, bad
        opts = [ln.split()[3] for ln in open("/proc/mounts") if ln.split()[1] == merged][0].split(",")
        assert "rw" in opts, opts
        m = merged
        # create
        new = pattern(14, 12345)
        put(f"{m}/new", new)
        # modify a lower file: copied up, then changed
        fd = os.open(f"{m}/mod", os.O_RDWR)
        os.pwrite(fd, b"XYZ", 40000)
        os.close(fd)
        mod2 = mod[:40000] + b"XYZ" + mod[40003:]
        # delete a lower file: a whiteout in upper
        os.unlink(f"{m}/del")
        # rename a lower file: copy-up, then RENAME_WHITEOUT in upper
        os.rename(f"{m}/keep", f"{m}/keep2")
        # rename a new file over a lower one
        put(f"{m}/src", src)
        os.rename(f"{m}/src", f"{m}/over")
        # a lower directory cannot move without redirect_dir; an upper one can
        expect_errno("EXDEV", os.rename, f"{m}/ldir", f"{m}/ldir2")
        os.mkdir(f"{m}/udir")
        put(f"{m}/udir/x", b"x")
        os.rename(f"{m}/udir", f"{m}/udir2")
        # inside the lower directory: copy-up of the directory, a whiteout in it
        os.unlink(f"{m}/ldir/inner")
        want = {"new": new, "mod": mod2, "keep2": keep, "over": src}
        merged_names = sorted(os.listdir(m))
        assert merged_names == ["keep2", "ldir", "mod", "new", "over", "udir2"], merged_names
        for n, data in want.items():
            assert content(f"{m}/{n}") == data, n
        assert os.listdir(f"{m}/ldir") == []
        bad = overlay_complaints(log0)
        assert not bad, bad
        # the lower layer is untouched
        assert content(f"{lower}/mod") == mod and content(f"{lower}/keep") == keep
        assert sorted(os.listdir(lower)) == ["del", "keep", "ldir", "mod", "over"]
        gtest.sh(f"umount {m}")
        mounted.remove(m)
        # what overlayfs left on ferrofs
        for check in ("now", "after drop_caches"):
            for n, data in want.items():
                assert content(f"{upper}/{n}") == data, (check, n)
            assert_whiteout(f"{upper}/del", nlink=None)
            assert_whiteout(f"{upper}/ldir/inner", nlink=None)
            assert_whiteout(f"{upper}/keep")  # our RENAME_WHITEOUT's
            assert content(f"{upper}/udir2/x") == b"x"
            names = sorted(os.listdir(upper))
            assert names == ["del", "keep", "keep2", "ldir", "mod", "new", "over", "udir2"], (check, names)
            assert os.listdir(work) == ["work"], os.listdir(work)
            gtest.drop_caches()
        # mounted again, the merged view is the same
        overlay_mount(lower, upper, work, merged)
        mounted.append(merged)
        assert sorted(os.listdir(m)) == ["keep2", "ldir", "mod", "new", "over", "udir2"]
        for n, data in want.items():
            assert content(f"{m}/{n}") == data, n
        gtest.sh(f"umount {m}")
        mounted.remove(m)
    finally:
        for d in mounted:
            gtest.sh(f"umount {d}", check=False)
        gtest.sh(f"umount {lower}", check=False)
    # the upper tree survives a remount of ferrofs (and fsck runs at the end)
    gtest.remount()
    assert content(f"{upper}/mod") == mod2
    assert_whiteout(f"{upper}/del", nlink=None)
    assert_whiteout(f"{upper}/keep")


if __name__ == "__main__":
    gtest.main(globals())
