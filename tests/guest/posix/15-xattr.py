#!/usr/bin/env python3
"""Extended attributes and POSIX ACLs: values byte for byte, flags, errno,
listing, persistence, ACL inheritance and the umask."""
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import expect_errno, fiemap, pattern


def touch(name, mode=0o644):
    os.close(os.open(name, os.O_CREAT | os.O_WRONLY, mode))


def test_user_xattrs():
    touch("f")
    os.setxattr("f", "user.small", b"v1")
    big = pattern(1, 60000)
    os.setxattr("f", "user.big", big)
    os.setxattr("f", "user.empty", b"")
    assert os.getxattr("f", "user.small") == b"v1"
    assert os.getxattr("f", "user.big") == big
    assert os.getxattr("f", "user.empty") == b""
    assert sorted(os.listxattr("f")) == ["user.big", "user.empty", "user.small"]
    expect_errno("EEXIST", os.setxattr, "f", "user.small", b"x", os.XATTR_CREATE)
    expect_errno("ENODATA", os.setxattr, "f", "user.none", b"x", os.XATTR_REPLACE)
    os.setxattr("f", "user.small", b"replaced", os.XATTR_REPLACE)
    expect_errno("ENODATA", os.getxattr, "f", "user.none")
    expect_errno("E2BIG", os.setxattr, "f", "user.huge", bytes(65537))
    expect_errno("ERANGE", os.setxattr, "f", "user." + "n" * 251, b"x")
    os.removexattr("f", "user.big")
    expect_errno("ENODATA", os.removexattr, "f", "user.big")
    gtest.remount()
    assert os.getxattr("f", "user.small") == b"replaced"
    assert sorted(os.listxattr("f")) == ["user.empty", "user.small"]
    for i in range(200):  # many attributes on one inode
        os.setxattr("f", f"user.many{i}", pattern(i, i * 7))
    gtest.drop_caches()
    for i in range(200):
        assert os.getxattr("f", f"user.many{i}") == pattern(i, i * 7)


def test_trusted_security_and_dirs():
    os.mkdir("d")
    os.setxattr("d", "trusted.t", b"tv")
    os.setxattr("d", "security.s", b"sv")
    assert os.getxattr("d", "trusted.t") == b"tv" and os.getxattr("d", "security.s") == b"sv"
    expect_errno("EOPNOTSUPP", os.setxattr, "d", "bogus.x", b"1")
    os.symlink("target", "l")
    assert os.listxattr("l", follow_symlinks=False) == []


def test_xattrs_freed_with_inode():
    free0 = gtest.statfs_free()
    touch("f")
    os.setxattr("f", "user.big", pattern(2, 65536))
    assert gtest.statfs_free() < free0 - 10
    os.unlink("f")
    assert gtest.statfs_free() == free0, (gtest.statfs_free(), free0)


def acl(entries):
    """uapi posix_acl_xattr: version 2, then (tag u16, perm u16, id u32)."""
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, p, i) for t, p, i in entries)


USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER = 1, 2, 4, 8, 0x10, 0x20
UNDEF = 0xFFFFFFFF


def test_umask_applies():
    old = os.umask(0o027)
    try:
        fd = os.open("u", os.O_CREAT | os.O_WRONLY, 0o666)
        os.close(fd)
        os.mkdir("ud", 0o777)
    finally:
        os.umask(old)
    assert os.stat("u").st_mode & 0o777 == 0o640, oct(os.stat("u").st_mode)
    assert os.stat("ud").st_mode & 0o777 == 0o750, oct(os.stat("ud").st_mode)


def test_access_acl():
    touch("f", 0o640)
    a = acl([(USER_OBJ, 6, UNDEF), (USER, 6, 1234), (GROUP_OBJ, 4, UNDEF), (MASK, 6, UNDEF), (OTHER, 0, UNDEF)])
    os.setxattr("f", "system.posix_acl_access", a)
    assert os.getxattr("f", "system.posix_acl_access") == a
    assert os.stat("f").st_mode & 0o777 == 0o660  # group bits show the mask
    assert "system.posix_acl_access" in os.listxattr("f")
    gtest.remount()
    assert os.getxattr("f", "system.posix_acl_access") == a
    os.chmod("f", 0o600)  # chmod rewrites the mask entry
    got = os.getxattr("f", "system.posix_acl_access")
    assert struct.unpack_from("<HHI", got, 4 + 8 * 3)[:2] == (MASK, 0), got
    out = subprocess.run(["getfacl", "-n", "f"], capture_output=True, text=True).stdout
    assert "user:1234:rw-" in out and "#effective:---" in out, out


def test_default_acl_inherited():
    os.mkdir("d", 0o755)
    dflt = acl([(USER_OBJ, 7, UNDEF), (USER, 5, 4321), (GROUP_OBJ, 5, UNDEF), (MASK, 5, UNDEF), (OTHER, 0, UNDEF)])
    os.setxattr("d", "system.posix_acl_default", dflt)
    old = os.umask(0o077)  # ignored when the directory has a default ACL
    try:
        touch("d/f", 0o666)
        os.mkdir("d/sub", 0o777)
    finally:
        os.umask(old)
    assert os.stat("d/f").st_mode & 0o777 == 0o640, oct(os.stat("d/f").st_mode)
    inherited = os.getxattr("d/f", "system.posix_acl_access")
    assert struct.unpack_from("<HHI", inherited, 4 + 8)[::2] == (USER, 4321), inherited
    assert os.getxattr("d/sub", "system.posix_acl_default") == dflt
    os.removexattr("d", "system.posix_acl_default")
    expect_errno("ENODATA", os.getxattr, "d", "system.posix_acl_default")


FIEMAP_FLAG_XATTR = 0x2
FIEMAP_EXTENT_LAST, FIEMAP_EXTENT_DATA_INLINE, FIEMAP_EXTENT_NOT_ALIGNED = 0x1, 0x200, 0x100


def dev_bytes(off, n):
    """n bytes of the pmem device at off, past its page cache (O_DIRECT)."""
    import mmap
    start = off // 4096 * 4096
    size = (off + n - start + 4095) // 4096 * 4096
    buf = mmap.mmap(-1, size)
    fd = os.open(gtest.DEV, os.O_RDONLY | os.O_DIRECT)
    try:
        assert os.preadv(fd, [buf], start) == size
    finally:
        os.close(fd)
    return bytes(buf[off - start:off - start + n])


def test_fiemap_xattr():
    """FIEMAP_FLAG_XATTR (xfs_io fiemap -a, generic/425): the ranges it
    names hold the attributes (read back from the device: names and the
    external value), the last one is flagged LAST; none without attributes."""
    touch("f")
    touch("g")
    fd = os.open("f", os.O_RDONLY)
    assert fiemap(fd, flags=FIEMAP_FLAG_XATTR) == []
    names = [f"{i:010d}" for i in range(409)]  # generic/425's load
    for n in names:
        os.setxattr("f", "user." + n, n.encode())
        os.setxattr("g", "user." + n, b"g")
    big = pattern(7, 9000)
    os.setxattr("f", "user.external", big)
    for when in ("now", "after remount"):
        ext = fiemap(fd, flags=FIEMAP_FLAG_XATTR)
        assert 1 < len(ext) < 200, (when, len(ext))
        assert [e[3] & FIEMAP_EXTENT_LAST for e in ext] == [0] * (len(ext) - 1) + [FIEMAP_EXTENT_LAST]
        logical, found, values = 0, set(), []
        for lo, phys, length, fl in ext:
            assert lo == logical, (when, ext)  # logical offsets count the bytes
            logical += length
            raw = dev_bytes(phys, length)
            if fl & FIEMAP_EXTENT_DATA_INLINE:
                assert fl & FIEMAP_EXTENT_NOT_ALIGNED and length % 536 == 0, (when, fl, length)
                for k in range(0, length, 536):
                    rec = raw[k + 24:k + 536]  # key, then the record: name at 24
                    found.add(rec[24:24 + rec[1]].decode())
            else:
                assert phys % 4096 == 0 and length == 12288, (when, phys, length)
                values.append(raw[:9000])
        assert found == set(names) | {"external"}, (when, len(found))
        assert values == [big], when
        # xfs_io's view, the one generic/425 counts
        out = subprocess.run(["xfs_io", "-c", "fiemap -a", "f"], capture_output=True, text=True)
        assert out.returncode == 0 and len([ln for ln in out.stdout.splitlines()[1:] if "hole" not in ln]) == len(ext), out
        if when == "now":
            os.close(fd)
            gtest.remount()
            fd = os.open("f", os.O_RDONLY)
    # the flag mixes with nothing but SYNC
    expect_errno("EBADR", fiemap, fd, flags=FIEMAP_FLAG_XATTR | 0x4)
    for n in names:
        os.removexattr("f", "user." + n)
    os.removexattr("f", "user.external")
    assert fiemap(fd, flags=FIEMAP_FLAG_XATTR | 0x1) == []
    os.close(fd)


if __name__ == "__main__":
    gtest.main(globals())
