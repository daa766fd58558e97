#!/usr/bin/env python3
"""Corrupted images mounted in the VM, many in one boot.

The host generates the images (tools/examples/corrupt-images.rs: a populated
8 MiB filesystem and one patch per case, for every on-media structure) into
$FERROFS_T_STRESS_IMAGES (default out/stress/images-short). For each case we
lay base + patch onto /dev/pmem0 and mount it:
  * refused: the errno must be EUCLEAN, EINVAL or EIO and the kernel log must
    have a "ferrofs (pmem0): ..." line saying why;
  * mounted: walk everything (stat, readdir, read, readlink, xattrs), then
    write, reflink, CoW through write and mmap, truncate, setxattr, rename
    and remove everything; each operation succeeds or fails with a clean
    errno (an EUCLEAN/EIO comes with its dmesg line), and umount works.
Cases marked `mount` must be refused; `detect` must be refused or give an
EUCLEAN/EIO somewhere. Never an oops, WARN, lockdep report or hang (the
kernel log is checked after every image).
"""
import errno
import fcntl
import mmap
import os
import signal
import stat as stm
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stresslib as S
from fsutil import clone, mount_errno

B = 4096
read_limit = S.knob("READ_LIMIT", 256 << 10, 4 << 20)  # bytes read per file in the walk
BLKFLSBUF = 0x1261
# errnos a damaged filesystem may legitimately return from these operations
CLEAN = {"EUCLEAN", "EIO", "EINVAL", "ENOENT", "ENOTDIR", "EISDIR", "ENOSPC", "EEXIST", "ENOTEMPTY",
         "ESTALE", "EFBIG", "ENODATA", "ERANGE", "E2BIG", "EMLINK", "ELOOP", "ENAMETOOLONG", "EROFS",
         "EOPNOTSUPP", "EXDEV", "EPERM", "EACCES", "EOVERFLOW", "EBUSY", "ENOTSUP",
         "ENXIO"}  # ENXIO: SEEK_DATA with no data; open of a node of unknown type
DETECTED = {"EUCLEAN", "EIO"}


class Case:
    def __init__(self):
        self.errs = {}
        self.unclean = []

    def op(self, what, fn, *a, **kw):
        try:
            return fn(*a, **kw)
        except OSError as e:
            n = S.ename(e.errno)
            self.errs[n] = self.errs.get(n, 0) + 1
            if n not in CLEAN:
                self.unclean.append(f"{what}: {n}")
            return None


def load(imgdir):
    base = open(os.path.join(imgdir, "base.img"), "rb").read()
    cases = []
    for line in open(os.path.join(imgdir, "cases.tsv")):
        name, expect, patch = line.rstrip("\n").split("\t")
        data = open(os.path.join(imgdir, patch), "rb").read()
        blocks = []
        for i in range(0, len(data), 8 + B):
            (blk,) = struct.unpack_from("<Q", data, i)
            blocks.append((blk, data[i + 8:i + 8 + B]))
        cases.append((name, expect, blocks))
    return base, cases


def lay(base, blocks):
    fd = os.open(S.DEV, os.O_RDWR)
    try:
        os.pwrite(fd, base, 0)
        for blk, data in blocks:
            os.pwrite(fd, data, blk * B)
        os.fsync(fd)
        fcntl.ioctl(fd, BLKFLSBUF, 0)
    finally:
        os.close(fd)


def walk(c, top, budget):
    """Everything readable, with limits: sizes and link counts may be lies
    and a directory may contain itself."""
    stack = [(top, 0)]
    seen = 0
    while stack:
        d, depth = stack.pop()
        it = c.op(f"opendir {d}", os.scandir, d)
        if it is None:
            continue
        n = 0
        try:
            while True:
                try:
                    ent = next(it)
                except StopIteration:
                    break
                except OSError as e:
                    c.op(f"readdir {d}", lambda: (_ for _ in ()).throw(e))
                    break
                n += 1
                seen += 1
                if n > 2000 or seen > budget:
                    break
                p = ent.path
                st = c.op(f"lstat {p}", os.lstat, p)
                if st is None:
                    continue
                if stm.S_ISLNK(st.st_mode):
                    c.op(f"readlink {p}", os.readlink, p)
                elif stm.S_ISDIR(st.st_mode):
                    if depth < 6:
                        stack.append((p, depth + 1))
                elif stm.S_ISREG(st.st_mode):
                    fd = c.op(f"open {p}", os.open, p, os.O_RDONLY)
                    if fd is not None:
                        got = 0
                        while got < read_limit:
                            b = c.op(f"read {p}", os.read, fd, 1 << 18)
                            if not b:
                                break
                            got += len(b)
                        if st.st_size > B:
                            c.op(f"pread end {p}", os.pread, fd, B, min(st.st_size, 1 << 62) - B)
                        c.op(f"lseek data {p}", os.lseek, fd, 0, os.SEEK_DATA)
                        os.close(fd)
                names = c.op(f"listxattr {p}", os.listxattr, p, follow_symlinks=False) or []
                for x in names[:50]:
                    c.op(f"getxattr {p} {x}", os.getxattr, p, x, follow_symlinks=False)
        finally:
            it.close()


def mmap_store(path):
    """Store to the first page of a file through a shared mapping in a child;
    returns 'ok', 'SIGBUS' or an errno name."""
    pid = os.fork()
    if pid == 0:
        rc = 0
        try:
            fd = os.open(path, os.O_RDWR)
            m = mmap.mmap(fd, B)
            m[0:8] = b"mmapstor"
            m.flush()
            m.close()
            os.close(fd)
        except OSError as e:
            rc = 100 + e.errno
        except Exception:
            rc = 99
        os._exit(rc)
    _, st = os.waitpid(pid, 0)
    if os.WIFSIGNALED(st):
        return signal.Signals(os.WTERMSIG(st)).name
    rc = os.WEXITSTATUS(st)
    return "ok" if rc == 0 else (S.ename(rc - 100) if rc >= 100 else f"exit {rc}")


def mutate(c, m):
    p = lambda n: os.path.join(m, n)
    fd = c.op("create new", os.open, p("new"), os.O_RDWR | os.O_CREAT, 0o644)
    if fd is not None:
        c.op("write new", os.pwrite, fd, b"n" * (64 << 10), 0)
        c.op("fsync new", os.fsync, fd)
        src = c.op("open big", os.open, p("big"), os.O_RDWR)
        if src is not None:
            c.op("FICLONE big->new", clone, src, fd)
            c.op("CoW write new", os.pwrite, fd, b"c" * 5000, 3 * B + 10)
            c.op("write big", os.pwrite, src, b"w" * 9000, 7 * B)
            c.op("ftruncate big", os.ftruncate, src, 10 * B + 5)
            os.close(src)
        os.close(fd)
    r = mmap_store(p("copy"))
    if r not in ("ok",):
        c.errs[r] = c.errs.get(r, 0) + 1
        if r not in CLEAN and r != "SIGBUS":
            c.unclean.append(f"mmap store copy: {r}")
    c.op("setxattr", os.setxattr, p("xattrs"), "user.new", b"x" * 3000)
    c.op("removexattr", os.removexattr, p("xattrs"), "user.a3")
    c.op("mkdir", os.mkdir, p("newdir"))
    c.op("rename", os.rename, p("new"), p("newdir/moved"))
    c.op("symlink", os.symlink, "target", p("sl"))
    c.op("link", os.link, p("big"), p("big2"))
    # remove everything (bounded)
    removed = 0
    stack = [m]
    order = []
    while stack and removed < 3000:
        d = stack.pop()
        order.append(d)
        it = c.op(f"opendir {d}", os.scandir, d)
        if it is None:
            continue
        try:
            for ent in it:
                removed += 1
                if removed > 3000:
                    break
                isdir = c.op("is_dir", ent.is_dir, follow_symlinks=False)
                if isdir and len(order) < 200:
                    stack.append(ent.path)
                elif not isdir:
                    c.op(f"unlink {ent.path}", os.unlink, ent.path)
        except OSError as e:
            c.op(f"readdir {d}", lambda: (_ for _ in ()).throw(e))
        finally:
            it.close()
    for d in reversed(order[1:]):
        c.op(f"rmdir {d}", os.rmdir, d)


def main():
    imgdir = os.environ.get("FERROFS_T_STRESS_IMAGES") or os.path.join(os.environ["FERROFS_SRC"], "out/stress/images-short")
    if not os.path.exists(os.path.join(imgdir, "cases.tsv")):
        print(f"FAILED: no corrupt images in {imgdir}: generate them on the host first "
              f"(target/release/examples/corrupt-images {imgdir}, done by scripts/test stress and scripts/stress)")
        sys.exit(1)
    base, cases = load(imgdir)
    limit = S.knob("IMAGE_LIMIT", 0)
    if limit:
        cases = cases[:limit]
    k = S.Kmsg()
    failures = []
    stats = {"refused": 0, "mounted": 0, "detected": 0}
    errs_total = {}
    t0 = time.time()
    for i, (name, expect, blocks) in enumerate(cases):
        lay(base, blocks)
        k.new()
        S.mark(f"image {i} [{name}] expect {expect}")
        r = mount_errno(S.DEV, S.MNT)
        log = k.new()
        ours = [l for l in log if "ferrofs (pmem0): " in l]
        why = None
        detected = False
        if r != "OK":
            stats["refused"] += 1
            detected = True
            if r not in ("EUCLEAN", "EINVAL", "EIO"):
                why = f"mount gave {r}, want EUCLEAN, EINVAL or EIO"
            elif not ours:
                why = f"mount gave {r} without a 'ferrofs (pmem0): ...' line in the kernel log"
            outcome = f"refused {r}: {ours[-1] if ours else '(no log line)'}"
        else:
            stats["mounted"] += 1
            c = Case()
            walk(c, S.MNT, 5000)
            mutate(c, S.MNT)
            rc = os.system(f"umount {S.MNT} 2>/tmp/umount.err")
            if rc != 0:
                why = f"umount failed: {open('/tmp/umount.err').read().strip()}"
                os.system(f"umount -l {S.MNT}")
            log = k.new()
            ours = [l for l in log if "ferrofs (pmem0): " in l]
            for e, n in c.errs.items():
                errs_total[e] = errs_total.get(e, 0) + n
            detected = any(e in DETECTED for e in c.errs)
            if c.unclean:
                why = "unexpected errnos: " + "; ".join(c.unclean[:5])
            elif detected and not ours and "EUCLEAN" in c.errs:
                why = "an operation gave EUCLEAN without a 'ferrofs (pmem0): ...' line in the kernel log"
            elif expect == "mount":
                why = "mounted an image that must be refused"
            elif expect == "detect" and not detected:
                why = f"the damage was never reported (no EUCLEAN/EIO; errnos {c.errs})"
            outcome = f"mounted; errnos {dict(sorted(c.errs.items()))}" + (f"; {ours[0]}" if ours else "")
        if detected:
            stats["detected"] += 1
        try:
            k.check(f"image {i} [{name}]")
        except AssertionError as e:
            why = str(e)
            failures.append((i, name, why))
            print(f"FAIL image {i} [{name}]: {why}", flush=True)
            break  # the kernel is no longer trustworthy
        if why:
            failures.append((i, name, why))
            print(f"FAIL image {i} [{name}] ({expect}): {why}", flush=True)
        elif os.environ.get("FERROFS_T_STRESS_VERBOSE"):
            print(f"ok   image {i} [{name}] ({expect}): {outcome}", flush=True)
    n = len(cases)
    print(f"corrupt images: {n} tried in {time.time() - t0:.0f}s: {stats['refused']} refused at mount, "
          f"{stats['mounted']} mounted, {stats['detected']} detected; operation errnos {dict(sorted(errs_total.items()))}")
    S.summary("images", tried=n, refused=stats["refused"], mounted=stats["mounted"], failed=len(failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
