"""Helpers for in-guest tests: raw syscalls with errno, ioctls, mmap checks."""
import ctypes
import ctypes.util
import errno
import os
import re
import signal

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def parse_repquota(out):
    """{id: (KiB used, soft, hard, inodes used, soft, hard)} from the text of
    `repquota -n -v` (-v lists IDs without usage too; a grace column appears
    only past a soft limit)."""
    n = r"[ \t]+(\d+)"
    grace = r"(?:[ \t]+\S+)?"
    return {int(m.group(1)): tuple(int(x) for x in m.groups()[1:])
            for m in re.finditer(r"^#(\d+)[ \t]+[-+]{2}" + n * 3 + grace + n * 3 + grace + r"[ \t]*$", out, re.M)}


def mount_errno(dev, target, opts="dax", fstype="ferrofs"):
    """mount(2) and return 'OK' or the errno name (e.g. 'EINVAL')."""
    r = _libc.mount(dev.encode(), target.encode(), fstype.encode(), 0, opts.encode() if opts else None)
    if r == 0:
        return "OK"
    return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))


def errname(fn, *args, **kw):
    """Call fn; return 'OK' or the OSError's errno name."""
    try:
        fn(*args, **kw)
        return "OK"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def expect_errno(want, fn, *args, **kw):
    """want is an errno name; aliases (ENOTSUP/EOPNOTSUPP) compare equal."""
    got = errname(fn, *args, **kw)
    if got != want and getattr(errno, got, None) != getattr(errno, want):
        raise AssertionError(f"{getattr(fn, '__name__', fn)}{args}: got {got}, want {want}")


AT_FDCWD, AT_EMPTY_PATH = -100, 0x1000
RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4


def renameat2(old, new, flags):
    """renameat2(2) relative to the cwd (Python's os has no flags)."""
    if _libc.renameat2(AT_FDCWD, old.encode(), AT_FDCWD, new.encode(), ctypes.c_uint(flags)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), old)


def link_fd(fd, path):
    """linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH): gives an O_TMPFILE file
    a name (6.10+ lets the opener do it unprivileged). Linking through
    /proc/self/fd/N fails with EXDEV in the guest on every filesystem."""
    if _libc.linkat(fd, b"", AT_FDCWD, path.encode(), AT_EMPTY_PATH) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"linkat AT_EMPTY_PATH: {os.strerror(e)}", path)


# Remap ioctls (linux/fs.h), shared by the reflink, fsx and memory-failure tests.
FICLONE = 0x40049409
FICLONERANGE = 0x4020940D
FIDEDUPERANGE = 0xC0189436


FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2
FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_ZERO_RANGE, FALLOC_FL_INSERT_RANGE = 8, 16, 32


def fallocate(fd, mode, off, length):
    """fallocate(2) with a mode (Python's os has only posix_fallocate)."""
    if _libc.fallocate(fd, mode, ctypes.c_long(off), ctypes.c_long(length)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def clone(src_fd, dst_fd):
    """FICLONE: the whole of src into dst."""
    import fcntl
    fcntl.ioctl(dst_fd, FICLONE, src_fd)


def clone_range(src_fd, soff, length, dst_fd, doff):
    """FICLONERANGE."""
    import fcntl
    import struct
    fcntl.ioctl(dst_fd, FICLONERANGE, struct.pack("qQQQ", src_fd, soff, length, doff))


def dedupe(src_fd, soff, length, dst_fd, doff):
    """One-destination FIDEDUPERANGE: (status, bytes_deduped)."""
    import fcntl
    import struct
    buf = bytearray(struct.pack("QQHHI", soff, length, 1, 0, 0) + struct.pack("qQQiI", dst_fd, doff, 0, 0, 0))
    fcntl.ioctl(src_fd, FIDEDUPERANGE, buf)
    _, _, deduped, status, _ = struct.unpack_from("qQQiI", buf, 24)
    return status, deduped


FS_IOC_FIEMAP = 0xC020660B
FIEMAP_FLAG_SYNC = 0x1
FIEMAP_EXTENT_UNWRITTEN = 0x800
FIEMAP_EXTENT_SHARED = 0x2000


def fiemap(fd, off=0, length=2**64 - 1, flags=FIEMAP_FLAG_SYNC, max_extents=1024):
    """FS_IOC_FIEMAP: [(logical, physical, length, flags)] of the extents in
    [off, off+length). Fails if there are more than max_extents."""
    import fcntl
    import struct
    buf = bytearray(struct.pack("QQIIII", off, length, flags, 0, max_extents, 0) + bytes(56 * max_extents))
    fcntl.ioctl(fd, FS_IOC_FIEMAP, buf)
    count = struct.unpack_from("I", buf, 20)[0]
    assert count < max_extents, f"more than {max_extents} extents"
    out = []
    for k in range(count):
        logical, physical, length, _, _, fl = struct.unpack_from("QQQQQI", buf, 32 + 56 * k)
        out.append((logical, physical, length, fl))
    return out


def mkfile(name, data):
    """Create (or truncate) name holding data; returns an O_RDWR fd."""
    import os
    fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, data)
    return fd


def read_all(fd):
    """The whole file (one byte more is asked for, to see its true end)."""
    import os
    return os.pread(fd, os.fstat(fd).st_size + 1, 0)


def pattern(seed, n):
    """Deterministic bytes that differ per seed and offset."""
    import random
    return random.Random(seed).randbytes(n)


def kernel_log():
    """The kernel log ring buffer (klogctl READ_ALL): util-linux dmesg prints
    nothing in our chroot, busybox is not there."""
    buf = ctypes.create_string_buffer(1 << 20)
    n = _libc.klogctl(3, buf, len(buf))
    if n < 0:
        raise OSError(ctypes.get_errno(), "klogctl")
    return buf.raw[:n].decode(errors="replace")


if __name__ == "__main__":
    import sys
    if sys.argv[1:] == ["kmsg"]:
        sys.stdout.write(kernel_log())


def as_user(uid, gid, fn):
    """Runs fn() in a child with uid/gid (no capabilities, so limits
    apply): its return value (repr'd), or raises what it raised."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            out = "ok " + repr(fn())
        except OSError as e:
            out = "errno " + errno.errorcode.get(e.errno, str(e.errno))
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            out = "exc " + repr(e)
        os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    out = b""
    while chunk := os.read(r, 4096):
        out += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return out.decode()
