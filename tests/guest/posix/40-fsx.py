#!/usr/bin/env python3
"""fsx for ferrofs: random operations on a few files, every result checked
against an in-memory model.

Operations: pread, pwrite (offsets straddling 4 KiB blocks and 2 MiB
boundaries, 1 byte .. ~300 KiB), mmap loads and stores (MAP_SHARED, through a
long-lived mapping of the whole 8 MiB window and through fresh mappings at an
offset), truncate up/down, fallocate (keep-size, extending, punch hole, zero
range, unshare with and without keep-size, collapse range and insert range,
block-aligned and, now and then, not: EINVAL), FICLONERANGE between files and
within one file, copy_file_range (cloned when aligned, copied through splice
when not), FIDEDUPERANGE on equal
and unequal ranges, fsync/fdatasync/msync, close+reopen and remount.

Clone and dedupe follow the VFS rules exactly (fs/remap_range.c): the model
predicts EINVAL for unaligned starts, overlapping same-file ranges, an
unaligned length that does not end at the source's EOF, and an unaligned EOF
block cloned into the middle of the destination; dedupe must report
SAME/DIFFERS as the model says. Equal data may be reported DIFFERS only for
the reasons of fs/dax.c dax_range_compare_iter, checked with FIEMAP: an
all-zero block that is a hole on one side and mapped on the other, or that is
an unwritten extent on either side (compared by its raw, possibly stale,
media bytes).

After every operation: the size of the file(s) it touched (fstat) and the bytes
at both ends of the range it touched (pread) are compared with the model.
Every FERROFS_T_FSX_CHECK operations (default 500), after every remount and at
the end: every file in full.

Environment:
  FERROFS_T_FSX_SEED   seed (default 20261123)
  FERROFS_T_FSX_OPS    number of operations (default 12000: 120-160 s per 10k
                       ops under TCG, so the default stays well inside the
                       600 s per-test limit of tests/guest/run; 100000 ops take
                       20-27 minutes: run them directly,
                       FERROFS_T_FSX_OPS=100000 scripts/vm-run --timeout 3600 --
                       sh -c 'insmod $FERROFS_KO && tests/guest/posix/40-fsx.py test_fsx')
  FERROFS_T_FSX_CHECK  full compare every N operations (default 500)
  FERROFS_T_FSX_VERBOSE=1  print every operation
  FERROFS_T_FSX_REMOUNT_EVERY=N  also remount after every N operations (does
                       not change the operation sequence)
  FERROFS_T_FSX_OPLOG=1  before each remount write the operations since the
                       previous one to $FERROFS_RUNDIR/fsx-ops.log (survives a
                       guest panic in umount; use vm-run --keep)
"""
import collections
import ctypes
import ctypes.util
import errno
import fcntl
import os
import random
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import FIEMAP_EXTENT_UNWRITTEN, clone_range, dedupe, fiemap

SEED = int(os.environ.get("FERROFS_T_FSX_SEED", "20261123"))
OPS = int(os.environ.get("FERROFS_T_FSX_OPS", "12000"))
CHECK_EVERY = int(os.environ.get("FERROFS_T_FSX_CHECK", "500"))
VERBOSE = os.environ.get("FERROFS_T_FSX_VERBOSE") == "1"
REMOUNT_EVERY = int(os.environ.get("FERROFS_T_FSX_REMOUNT_EVERY", "0"))
OPLOG = os.environ.get("FERROFS_T_FSX_OPLOG") == "1" and os.environ.get("FERROFS_RUNDIR")

NFILES = 4
B = 4096
HUGE = 2 << 20
MAXSIZE = 8 << 20          # no file grows past this (4 files, 1 GiB pmem)
MAXWRITE = 300 << 10
MAPLEN = MAXSIZE           # the long-lived mapping covers every possible byte

FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE = 0x1, 0x2, 0x10
FALLOC_FL_UNSHARE_RANGE = 0x40
FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_INSERT_RANGE = 0x08, 0x20
FILE_DEDUPE_RANGE_SAME, FILE_DEDUPE_RANGE_DIFFERS = 0, 1
PROT_READ, PROT_WRITE, MAP_SHARED, MS_SYNC = 1, 2, 1, 4

libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int64]
libc.mmap.restype = ctypes.c_void_p
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.msync.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
MAP_FAILED = ctypes.c_void_p(-1).value


def fallocate(fd, mode, off, length):
    if libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def mmap_raw(fd, length, off=0):
    addr = libc.mmap(None, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off)
    if addr in (None, MAP_FAILED):
        e = ctypes.get_errno()
        raise OSError(e, "mmap: " + os.strerror(e))
    return addr


def munmap(addr, length):
    if libc.munmap(addr, length) != 0:
        raise OSError(ctypes.get_errno(), "munmap")




def block_types(fd, off, length):
    """{block index relative to off: "written" | "unwritten"} per FIEMAP for
    [off, off+length); blocks not in the dict are holes."""
    out = {}
    for lo, _, ln, fl in fiemap(fd, off, length, flags=0):
        t = "unwritten" if fl & FIEMAP_EXTENT_UNWRITTEN else "written"
        for b in range(max(lo, off) // B, (min(lo + ln, off + length) + B - 1) // B):
            out[b - off // B] = t
    return out


def fmt_extents(ext):
    return " ".join(f"[{lo:#x}+{ln:#x}@{ph:#x} fl {fl:#x}]" for lo, ph, ln, fl in ext)


def up(x):
    return (x + B - 1) // B * B


def down(x):
    return x // B * B


class Mismatch(AssertionError):
    pass


def clone_expect(ssize, dsize, soff, doff, length, same):
    """FICLONERANGE per fs/remap_range.c: (errno or None, byte count)."""
    if length == 0:                      # reflink to the source's EOF
        if soff == ssize:
            return None, 0
        if soff > ssize:
            return errno.EINVAL, 0
        length = ssize - soff
    if soff % B or doff % B:
        return errno.EINVAL, 0
    if soff >= ssize:
        return errno.EINVAL, 0
    count = min(length, ssize - soff)
    if soff + count == ssize:
        bcount = up(ssize) - soff
    else:
        count = down(count)
        bcount = count
    if same and doff + bcount > soff and doff < soff + bcount:
        return errno.EINVAL, 0
    if count != length:                  # shortened, FICLONERANGE cannot
        return errno.EINVAL, 0
    if count % B and doff + count < dsize:   # EOF block into the middle
        return errno.EINVAL, 0
    return None, count


def dedupe_expect(src, dst, soff, doff, length, same):
    """FIDEDUPERANGE per fs/remap_range.c and fs/dax.c.
    Returns (ioctl errno or None, status, bytes_deduped, may_differ)."""
    ssize, dsize = len(src), len(dst)
    if soff + length > ssize:
        return errno.EINVAL, 0, 0, False
    if length == 0:
        return None, FILE_DEDUPE_RANGE_SAME, 0, False
    if soff % B or doff % B:
        return None, -errno.EINVAL, 0, False
    if soff >= ssize or doff >= dsize or doff + length > dsize:
        return None, -errno.EINVAL, 0, False
    count = length
    if soff + count == ssize and doff + count == dsize:
        bcount = up(ssize) - soff
    else:
        count = down(count)
        bcount = count
    if same and doff + bcount > soff and doff < soff + bcount:
        return None, -errno.EINVAL, 0, False
    if count == 0:
        return None, FILE_DEDUPE_RANGE_SAME, length, False
    if src[soff:soff + count] != dst[doff:doff + count]:
        return None, FILE_DEDUPE_RANGE_DIFFERS, 0, False
    # equal data: a hole compares unequal to a written block of zeroes
    zero_block = any(not any(src[o:min(o + B, soff + count)]) for o in range(soff, soff + count, B))
    return None, FILE_DEDUPE_RANGE_SAME, length, zero_block


class Fsx:
    def __init__(self, seed, nops, nfiles=NFILES, remount=True):
        """`nfiles` files f0.. in the current directory. remount=False (for
        a run that shares the mount with other workloads, as
        tests/guest/stress/45-parallel.py does) closes and reopens every
        file where a remount would be, without unmounting."""
        self.seed = seed
        self.nfiles = nfiles
        self.remount = remount
        self.rng = random.Random(seed)
        self.nops = nops
        # written data comes from a random pool at random offsets: cheap under
        # TCG, and two writes practically never carry the same bytes
        self.pool = random.Random(seed ^ 0x5EED).randbytes(MAXSIZE + MAXWRITE)
        self.model = [bytearray() for _ in range(self.nfiles)]
        self.fds = [None] * self.nfiles
        self.maps = [None] * self.nfiles
        self.log = collections.deque(maxlen=30)
        self.counts = collections.Counter()
        self.opno = 0
        self.names = [f"f{i}" for i in range(self.nfiles)]
        self.since_remount = []

    # -- files ------------------------------------------------------------
    def open_all(self, create=False):
        for i in range(self.nfiles):
            self.open(i, create)

    def open(self, i, create=False):
        flags = os.O_RDWR | (os.O_CREAT | os.O_TRUNC if create else 0)
        self.fds[i] = os.open(self.names[i], flags, 0o644)
        self.maps[i] = mmap_raw(self.fds[i], MAPLEN)

    def close(self, i):
        if self.maps[i] is not None:
            munmap(self.maps[i], MAPLEN)
            self.maps[i] = None
        if self.fds[i] is not None:
            os.close(self.fds[i])
            self.fds[i] = None

    def close_all(self):
        for i in range(self.nfiles):
            self.close(i)

    # -- checking -----------------------------------------------------------
    def note(self, s):
        s = f"#{self.opno} {s}"
        self.log.append(s)
        if OPLOG:
            self.since_remount.append(s)
        if VERBOSE:
            print(s, flush=True)

    def fail(self, msg):
        out = ["", f"fsx FAILED at op #{self.opno} (seed {self.seed}): {msg}", "last operations:"]
        out += ["  " + s for s in self.log]
        out.append(f"reproduce: FERROFS_T_FSX_SEED={self.seed} FERROFS_T_FSX_OPS={self.opno} "
                   f"FERROFS_T_FSX_VERBOSE=1 scripts/vm-run -- tests/guest/posix/40-fsx.py")
        raise Mismatch("\n".join(out))

    def check_size(self, i):
        got = os.fstat(self.fds[i]).st_size
        if got != len(self.model[i]):
            self.fail(f"f{i}: size {got}, model says {len(self.model[i])}")

    def compare(self, i, off, got, how):
        want = self.model[i][off:off + len(got)]
        if len(got) != len(want):
            self.fail(f"f{i}: {how} at {off:#x} returned {len(got)} bytes, model has {len(want)}")
        if got != want:
            k = next(j for j in range(len(got)) if got[j] != want[j])
            nbad = sum(1 for j in range(len(got)) if got[j] != want[j])
            last = max(j for j in range(len(got)) if got[j] != want[j])
            self.fail(f"f{i}: {how} mismatch at offset {off + k:#x} ({off + k}): got byte {got[k]:#04x}, "
                      f"model {want[k]:#04x}; {nbad} bad bytes in {off + k:#x}..{off + last:#x} "
                      f"(file size {len(self.model[i]):#x}); got {bytes(got[k:k + 16]).hex()} "
                      f"want {bytes(want[k:k + 16]).hex()}")

    def pread_check(self, i, off, n, how="pread"):
        size = len(self.model[i])
        n = max(0, min(n, size - off))
        req = n + 1 if off + n >= size else n    # at EOF ask for one byte more: it must not come
        got = os.pread(self.fds[i], req, off)
        if len(got) != n:
            self.fail(f"f{i}: {how} at {off:#x} of {req} bytes returned {len(got)}, model expects {n} (EOF {size:#x})")
        self.compare(i, off, got, how)

    def spot(self, i, off, n):
        """Cheap check after an operation on [off, off+n) of file i."""
        self.check_size(i)
        size = len(self.model[i])
        k = 512
        for o in {max(0, off - 64), max(0, off + n - k), max(0, down(off + n) - 16)}:
            if o < size:
                self.pread_check(i, o, k + 128, "spot pread")
        o = self.rng.randrange(size) if size else 0
        self.pread_check(i, o, 256, "spot pread")

    def full_check(self, why):
        for i in range(self.nfiles):
            self.check_size(i)
            self.pread_check(i, 0, len(self.model[i]), f"full compare ({why})")

    # -- random ranges ----------------------------------------------------------
    def offset(self, i, limit=MAXSIZE):
        """Offsets near block and 2 MiB boundaries, inside or a little past EOF."""
        size = len(self.model[i])
        r = self.rng.random()
        if r < 0.35:
            off = self.rng.randrange(min(size + (64 << 10), limit))
        elif r < 0.6:
            off = self.rng.randrange(0, MAXSIZE, HUGE) + self.rng.randint(-8192, 8192)
        elif r < 0.9:
            off = self.rng.randrange(0, max(size, B) + B, B) + self.rng.randint(-64, 64)
        else:
            off = self.rng.randrange(limit)
        return max(0, min(off, limit - 1))

    def length(self, limit=MAXWRITE):
        r = self.rng.random()
        if r < 0.3:
            n = self.rng.randint(1, 512)
        elif r < 0.6:
            n = self.rng.randint(1, 16 << 10)
        elif r < 0.85:
            n = self.rng.randint(16 << 10, limit)
        else:
            n = self.rng.randint(1, limit // B) * B
        return n

    def data(self, n):
        p = self.rng.randrange(len(self.pool) - n)
        return self.pool[p:p + n]

    # -- operations -------------------------------------------------------
    def op_read(self, i):
        off, n = self.offset(i), self.length()
        self.note(f"read  f{i} {off:#x} +{n:#x}")
        self.pread_check(i, min(off, len(self.model[i])), n)

    def op_write(self, i):
        off = self.offset(i)
        n = min(self.length(), MAXSIZE - off)
        d = self.data(n)
        self.note(f"write f{i} {off:#x} +{n:#x} (size {len(self.model[i]):#x})")
        got = os.pwrite(self.fds[i], d, off)
        if got != n:
            self.fail(f"pwrite returned {got}, wanted {n}")
        self.model_write(i, off, d)
        self.spot(i, off, n)

    def model_write(self, i, off, d):
        m = self.model[i]
        if off > len(m):
            m.extend(bytes(off - len(m)))
        m[off:off + len(d)] = d

    def map_range(self, i):
        size = len(self.model[i])
        off = min(self.offset(i), size - 1)
        n = min(self.length(), size - off)
        return off, n

    def op_mapread(self, i):
        if not self.model[i]:
            return self.op_read(i)
        off, n = self.map_range(i)
        if self.rng.random() < 0.5:
            self.note(f"mapread f{i} {off:#x} +{n:#x}")
            got = ctypes.string_at(self.maps[i] + off, n)
        else:
            moff = down(off)
            ln = off + n - moff
            self.note(f"mapread f{i} {off:#x} +{n:#x} (fresh mapping at {moff:#x})")
            a = mmap_raw(self.fds[i], ln, moff)
            try:
                got = ctypes.string_at(a + off - moff, n)
            finally:
                munmap(a, ln)
        self.compare(i, off, got, "mmap load")

    def op_mapwrite(self, i):
        if not self.model[i]:
            return self.op_write(i)
        off, n = self.map_range(i)
        d = self.data(n)
        if self.rng.random() < 0.5:
            self.note(f"mapwrite f{i} {off:#x} +{n:#x}")
            ctypes.memmove(self.maps[i] + off, d, n)
            got = ctypes.string_at(self.maps[i] + off, n)
        else:
            moff = down(off)
            ln = off + n - moff
            self.note(f"mapwrite f{i} {off:#x} +{n:#x} (fresh mapping at {moff:#x})")
            a = mmap_raw(self.fds[i], ln, moff)
            try:
                ctypes.memmove(a + off - moff, d, n)
                if self.rng.random() < 0.3:
                    libc.msync(a, ln, MS_SYNC)
                got = ctypes.string_at(a + off - moff, n)
            finally:
                munmap(a, ln)
        self.model_write(i, off, d)
        self.compare(i, off, got, "load after mmap store")
        self.spot(i, off, n)

    def op_truncate(self, i):
        size = len(self.model[i])
        r = self.rng.random()
        if r < 0.4:
            new = self.rng.randint(0, size)
        elif r < 0.8:
            new = self.rng.randint(size, MAXSIZE)
        else:
            new = self.offset(i)
        self.note(f"truncate f{i} {size:#x} -> {new:#x}")
        os.ftruncate(self.fds[i], new)
        m = self.model[i]
        if new < size:
            del m[new:]
        else:
            m.extend(bytes(new - size))
        self.spot(i, max(0, min(size, new) - 600), 1200)

    def op_fallocate(self, i):
        off = self.offset(i)
        n = min(self.length(MAXSIZE // 4 if self.rng.random() < 0.2 else MAXWRITE), MAXSIZE - off)
        kind = self.rng.choice(["punch", "punch", "zero", "zero-keep", "falloc", "falloc-keep",
                                "unshare", "unshare-keep"])
        size = len(self.model[i])
        self.counts[kind] += 1
        self.note(f"{kind} f{i} {off:#x} +{n:#x} (size {size:#x})")
        mode = {"punch": FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, "zero": FALLOC_FL_ZERO_RANGE,
                "zero-keep": FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, "falloc": 0,
                "falloc-keep": FALLOC_FL_KEEP_SIZE, "unshare": FALLOC_FL_UNSHARE_RANGE,
                "unshare-keep": FALLOC_FL_UNSHARE_RANGE | FALLOC_FL_KEEP_SIZE}[kind]
        fallocate(self.fds[i], mode, off, n)
        m = self.model[i]
        size = len(m)
        if kind in ("punch", "zero", "zero-keep"):
            e = min(off + n, size)
            if e > off:
                m[off:e] = bytes(e - off)
        # UNSHARE without KEEP_SIZE allocates and extends like mode 0
        # (xfstests' fsx found ferrofs leaving the size short there)
        if kind in ("zero", "falloc", "unshare") and off + n > size:
            m.extend(bytes(off + n - size))
        self.spot(i, off, n)

    def shift_range(self, i):
        """A block-aligned (sometimes not) offset inside the file and length."""
        size = len(self.model[i])
        off = self.rng.randrange(0, max(size, B), B)
        r = self.rng.random()
        if r < 0.6:
            n = self.rng.randint(1, 64) * B
        elif r < 0.9:
            n = self.rng.randint(1, 512) * B
        else:
            n = self.rng.randint(1, 1024) * B      # up to 4 MiB
        if self.rng.random() < 0.05:
            if self.rng.random() < 0.5:
                off += self.rng.choice([1, 512, 2048])
            else:
                n += self.rng.choice([1, 512, 2048])
        return off, n

    def op_collapse(self, i):
        """FALLOC_FL_COLLAPSE_RANGE: EINVAL unless block-aligned and ending
        before EOF; then the bytes after the range move down by its length."""
        m = self.model[i]
        size = len(m)
        off, n = self.shift_range(i)
        want = errno.EINVAL if off % B or n % B or off + n >= size else None
        self.note(f"collapse f{i} {off:#x} +{n:#x} (size {size:#x}; expect {errno.errorcode[want] if want else 'ok'})")
        try:
            fallocate(self.fds[i], FALLOC_FL_COLLAPSE_RANGE, off, n)
            err = None
        except OSError as e:
            err = e.errno
        if err != want:
            self.fail(f"collapse f{i} {off:#x} +{n:#x}: got {errno.errorcode.get(err, 'success') if err else 'success'}, "
                      f"expected {errno.errorcode[want] if want else 'success'}")
        if want is None:
            del m[off:off + n]
            self.counts["collapse-ok"] += 1
        else:
            self.counts["collapse-einval"] += 1
        self.spot(i, max(0, off - B), 2 * B)

    def op_insert(self, i):
        """FALLOC_FL_INSERT_RANGE: EINVAL unless block-aligned and starting
        before EOF; then a hole of the length appears at the offset and the
        rest moves up."""
        m = self.model[i]
        size = len(m)
        off, n = self.shift_range(i)
        if size + n > MAXSIZE:
            n = (MAXSIZE - size) // B * B
            if n == 0:
                return self.op_collapse(i)
        want = errno.EINVAL if off % B or n % B or off >= size else None
        self.note(f"insert f{i} {off:#x} +{n:#x} (size {size:#x}; expect {errno.errorcode[want] if want else 'ok'})")
        try:
            fallocate(self.fds[i], FALLOC_FL_INSERT_RANGE, off, n)
            err = None
        except OSError as e:
            err = e.errno
        if err != want:
            self.fail(f"insert f{i} {off:#x} +{n:#x}: got {errno.errorcode.get(err, 'success') if err else 'success'}, "
                      f"expected {errno.errorcode[want] if want else 'success'}")
        if want is None:
            m[off:off] = bytes(n)
            self.counts["insert-ok"] += 1
        else:
            self.counts["insert-einval"] += 1
        self.spot(i, max(0, off - B), n + 2 * B)

    def op_clone(self, i):
        s, d = self.rng.randrange(self.nfiles), i
        if self.rng.random() < 0.3:
            s = d
        src, dst = self.model[s], self.model[d]
        ssize, dsize = len(src), len(dst)
        if ssize == 0:
            return self.op_write(s)
        soff = self.rng.randrange(0, ssize, B)
        r = self.rng.random()
        if r < 0.45:
            n = self.rng.randint(1, 64) * B
        elif r < 0.6:
            n = self.rng.randint(1, 1024) * B          # up to 4 MiB
        elif r < 0.85:
            n = ssize - soff                            # to EOF, maybe unaligned
        elif r < 0.92:
            n = self.rng.randint(1, 64 * B)             # unaligned: EINVAL unless at EOF
        else:
            n = 0                                       # "to EOF"
        if n and soff + n > ssize and self.rng.random() < 0.8:
            n = ssize - soff
        real = n if n else ssize - soff
        hi = max(0, min(dsize + (1 << 20), MAXSIZE - real))
        doff = self.rng.randrange(0, hi + 1, B) if hi else 0
        if self.rng.random() < 0.05:
            doff += self.rng.choice([1, 512])           # unaligned destination: EINVAL
        if doff + real > MAXSIZE:
            return self.op_read(i)
        want, count = clone_expect(ssize, dsize, soff, doff, n, s == d)
        self.note(f"clone f{s} {soff:#x} +{n:#x} -> f{d} {doff:#x} (sizes {ssize:#x} {dsize:#x}; "
                  f"expect {errno.errorcode[want] if want else 'ok'})")
        try:
            clone_range(self.fds[s], soff, n, self.fds[d], doff)
            got = None
        except OSError as e:
            got = e.errno
        if got != want:
            self.fail(f"FICLONERANGE f{s} {soff:#x} +{n:#x} -> f{d} {doff:#x}: got "
                      f"{errno.errorcode.get(got, 'success') if got else 'success'}, expected "
                      f"{errno.errorcode[want] if want else 'success'}")
        if want is None:
            self.counts["clone-ok"] += 1
            piece = bytes(src[soff:soff + count])
            self.model_write(d, doff, piece)
        else:
            self.counts["clone-einval"] += 1
        self.spot(d, doff, count or B)
        if s != d:
            self.spot(s, soff, count or B)

    def op_copy(self, i):
        """copy_file_range(2) between files or within one (the VFS rules of
        generic_copy_file_checks: the length is cut at the source's EOF, and
        overlapping ranges of one file are EINVAL). Aligned ranges are
        cloned by remap_file_range, unaligned ones copied through
        splice_write; a short copy is allowed, never a wrong one."""
        s, d = self.rng.randrange(self.nfiles), i
        if self.rng.random() < 0.3:
            s = d
        ssize, dsize = len(self.model[s]), len(self.model[d])
        soff = self.offset(s) if self.rng.random() < 0.5 else self.rng.randrange(0, max(ssize, 1) + B, B)
        n = self.length()
        doff = self.offset(d) if self.rng.random() < 0.5 else self.rng.randrange(0, dsize + B, B)
        count = 0 if soff >= ssize else min(n, ssize - soff)
        if doff + count > MAXSIZE:
            return self.op_read(i)
        want = None
        if s == d and count and doff + count > soff and doff < soff + count:
            want = errno.EINVAL
        self.note(f"copy f{s} {soff:#x} +{n:#x} -> f{d} {doff:#x} (sizes {ssize:#x} {dsize:#x}; "
                  f"expect {errno.errorcode[want] if want else count})")
        try:
            got = os.copy_file_range(self.fds[s], self.fds[d], n, soff, doff)
            err = None
        except OSError as e:
            got, err = 0, e.errno
        if err != want:
            self.fail(f"copy_file_range f{s} {soff:#x} +{n:#x} -> f{d} {doff:#x}: got "
                      f"{errno.errorcode.get(err, 'success') if err else 'success'}, expected "
                      f"{errno.errorcode[want] if want else 'success'}")
        if want is not None:
            self.counts["copy-einval"] += 1
            return
        if got > count or (count and got == 0):
            self.fail(f"copy_file_range f{s} {soff:#x} +{n:#x} -> f{d} {doff:#x} returned {got}, "
                      f"expected 1..{count}")
        self.counts["copy-short" if got < count else "copy-ok"] += 1
        if got:
            self.model_write(d, doff, bytes(self.model[s][soff:soff + got]))
        self.spot(d, doff, max(got, 1))

    def op_dedupe(self, i):
        s, d = self.rng.randrange(self.nfiles), i
        if self.rng.random() < 0.2:
            s = d
        if not self.model[s]:
            return self.op_write(s)
        ssize = len(self.model[s])
        soff = self.rng.randrange(0, ssize, B)
        r = self.rng.random()
        if r < 0.6:
            n = min(self.rng.randint(1, 64) * B, ssize - soff)
        elif r < 0.8:
            n = ssize - soff
        else:
            n = min(self.rng.randint(1, 64 * B), ssize - soff)
        hi = max(0, min(len(self.model[d]) + B, MAXSIZE - n))
        doff = self.rng.randrange(0, hi + 1, B) if hi else 0
        prep = ""
        if self.rng.random() < 0.5:
            # make the ranges equal first: write the source's bytes there
            piece = bytes(self.model[s][soff:soff + n])
            if s == d and doff < soff + n and soff < doff + n:
                doff = up(soff + n)
            if doff + n <= MAXSIZE:
                if self.rng.random() < 0.5 or s == d:
                    os.pwrite(self.fds[d], piece, doff)
                    prep = " after pwrite of the same bytes"
                else:
                    want, _ = clone_expect(ssize, len(self.model[d]), soff, doff, n, False)
                    if want is None:
                        clone_range(self.fds[s], soff, n, self.fds[d], doff)
                        prep = " after clone of the same range"
                    else:
                        os.pwrite(self.fds[d], piece, doff)
                        prep = " after pwrite of the same bytes"
                self.model_write(d, doff, piece)
        src, dst = self.model[s], self.model[d]
        werr, wstatus, wbytes, may_differ = dedupe_expect(src, dst, soff, doff, n, s == d)
        self.note(f"dedupe f{s} {soff:#x} +{n:#x} -> f{d} {doff:#x}{prep} (sizes {len(src):#x} {len(dst):#x}; "
                  f"expect status {wstatus}{' or 1' if may_differ else ''} bytes {wbytes:#x})")
        try:
            status, nbytes = dedupe(self.fds[s], soff, n, self.fds[d], doff)
            err = None
        except OSError as e:
            err, status, nbytes = e.errno, None, None
        if err != werr:
            self.fail(f"FIDEDUPERANGE: ioctl {errno.errorcode.get(err) if err else 'succeeded'}, "
                      f"expected {errno.errorcode[werr] if werr else 'success'}")
        if err is None:
            ok = (status, nbytes) == (wstatus, wbytes)
            if may_differ and (status, nbytes) == (FILE_DEDUPE_RANGE_DIFFERS, 0):
                # only if a hole faces a mapped block somewhere in the range
                # fs/dax.c dax_range_compare_iter: a hole facing a mapped
                # block differs, and an unwritten extent is compared by its
                # raw (possibly stale) media bytes, not as zeroes
                cnt = n if soff + n == len(src) and doff + n == len(dst) else down(n)
                ts = block_types(self.fds[s], soff, cnt)
                td = block_types(self.fds[d], doff, cnt)
                zb = [o for o in range(soff, soff + cnt, B) if not any(src[o:min(o + B, soff + cnt)])]
                excuse = None
                for o in zb:
                    k = (o - soff) // B
                    a, b = ts.get(k, "hole"), td.get(k, "hole")
                    if (a == "hole") != (b == "hole"):
                        excuse = "hole-differs"
                        break
                    if "unwritten" in (a, b):
                        excuse = "unwritten-differs"
                if excuse is None:
                    self.fail(f"FIDEDUPERANGE f{s} {soff:#x} +{n:#x} -> f{d} {doff:#x}: DIFFERS on equal data "
                              f"although no hole faces a mapped block; all-zero blocks at source offsets "
                              f"{[hex(o) for o in zb[:10]]}; source extents "
                              f"{fmt_extents(fiemap(self.fds[s], soff, cnt, flags=0))}; destination extents "
                              f"{fmt_extents(fiemap(self.fds[d], doff, cnt, flags=0))}")
                ok = True
                self.counts["dedupe-" + excuse] += 1
            if not ok:
                self.fail(f"FIDEDUPERANGE f{s} {soff:#x} +{n:#x} -> f{d} {doff:#x}: status {status} "
                          f"bytes_deduped {nbytes:#x}, model expects status {wstatus} bytes {wbytes:#x}")
            self.counts[{0: "dedupe-same", 1: "dedupe-differs"}.get(status, "dedupe-einval")] += 1
        self.spot(d, doff, n)
        if s != d:
            self.spot(s, soff, n)

    def op_sync(self, i):
        kind = self.rng.choice(["fsync", "fdatasync", "msync"])
        self.counts[kind] += 1
        self.note(f"{kind} f{i}")
        if kind == "fsync":
            os.fsync(self.fds[i])
        elif kind == "fdatasync":
            os.fdatasync(self.fds[i])
        elif libc.msync(self.maps[i], MAPLEN, MS_SYNC) != 0:
            self.fail(f"msync: {os.strerror(ctypes.get_errno())}")
        self.check_size(i)

    def op_reopen(self, i):
        self.note(f"close+reopen f{i}")
        self.close(i)
        self.open(i)
        self.spot(i, 0, len(self.model[i]))

    def op_remount(self, i):
        self.note("remount")
        if OPLOG:
            with open(os.path.join(OPLOG, "fsx-ops.log"), "w") as f:
                f.write("\n".join(self.since_remount) + "\n")
            self.since_remount = []
        self.close_all()
        if self.remount:
            gtest.remount()
        self.open_all()
        self.full_check("after remount" if self.remount else "after close and reopen")

    OPS = [("read", 14), ("write", 20), ("mapread", 8), ("mapwrite", 8), ("truncate", 5),
           ("fallocate", 14), ("collapse", 3), ("insert", 3), ("clone", 10), ("copy", 5), ("dedupe", 6), ("sync", 3), ("reopen", 1)]

    def run(self):
        names = [n for n, _ in self.OPS]
        weights = [w for _, w in self.OPS]
        self.open_all(create=True)
        t0 = time.monotonic()
        try:
            for self.opno in range(1, self.nops + 1):
                if self.rng.random() < 1 / 1500:
                    name = "remount"
                else:
                    name = self.rng.choices(names, weights)[0]
                self.counts[name] += 1
                getattr(self, "op_" + name)(self.rng.randrange(self.nfiles))
                if REMOUNT_EVERY and self.opno % REMOUNT_EVERY == 0:
                    self.op_remount(0)
                if self.opno % CHECK_EVERY == 0:
                    self.full_check(f"every {CHECK_EVERY} ops")
                if self.opno % 5000 == 0:
                    print(f"  {self.opno} ops, {time.monotonic() - t0:.0f}s, sizes "
                          f"{[hex(len(m)) for m in self.model]}", flush=True)
            self.full_check("end")
            if self.remount:
                self.close_all()
                gtest.remount()
                self.open_all()
                self.full_check("end, after remount")
        finally:
            self.close_all()
        dt = time.monotonic() - t0
        print(f"fsx: {self.nops} ops in {dt:.0f}s ({dt * 10000 / max(1, self.nops):.0f}s per 10k), seed {self.seed}")
        print("fsx: " + ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())))


def test_fsx():
    Fsx(SEED, OPS).run()


def test_fallocate_inside_eof_block():
    """fallocate(mode 0 or ZERO_RANGE) on a range that ends at or before EOF
    must not change i_size. Regression test: fsx (seed 7, ops 36 and 142)
    found ferrofs growing i_size to the end of the EOF block when the range
    ended inside it."""
    bad = []
    cases = [(100, 10, 10), (5000, 4096, 10), (100, 0, 100), (5000, 0, 100), (8192, 100, 100)]
    for mode in (0, FALLOC_FL_ZERO_RANGE):
        for size, off, n in cases:
            fd = os.open(f"s{mode}-{size}-{off}-{n}", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
            data = bytearray(bytes(range(256)) * (size // 256 + 1))[:size]
            os.write(fd, data)
            fallocate(fd, mode, off, n)
            if mode:
                data[off:off + n] = bytes(n)
            got = os.fstat(fd).st_size
            if got != size or os.pread(fd, size + 1, 0) != data:
                bad.append(f"size {size}: fallocate(fd, {mode:#x}, {off}, {n}) -> size {got}")
            os.close(fd)
    assert not bad, "fallocate inside EOF changed the file size: " + "; ".join(bad)


def test_dedupe_unwritten_stale_source():
    """FIDEDUPERANGE must compare what the files read, never raw media.
    A source range preallocated (unwritten) over freed blocks that still hold
    old bytes G reads as zeroes; a destination holding G is different data.
    Regression test: fsdax's dax_range_compare_iter reads IOMAP_UNWRITTEN
    extents raw, and ferrofs once reported SAME here and lost the
    destination's G; iomap_begin now reports unwritten extents to readers
    as holes. The reverse (zeroes against the same unwritten range) must not
    be a false DIFFERS either."""
    g = (b"old bytes of a freed block " * 2300)[:15 * B]
    x = os.open("x", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(x, b"A" * B + g)                       # blocks 1..15 hold g
    os.fsync(x)
    fallocate(x, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, B, 15 * B)
    fallocate(x, 0, B, 15 * B)                      # unwritten again, maybe on the same blocks
    assert os.pread(x, 15 * B, B) == bytes(15 * B), "preallocated range does not read zeroes"
    y = os.open("y", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(y, g)
    z = os.open("z", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(z, bytes(15 * B))
    got_y = dedupe(x, B, 15 * B, y, 0)
    after = os.pread(y, 15 * B + 1, 0)
    got_z = dedupe(x, B, 15 * B, z, 0)
    problems = []
    if after != g:
        problems.append(f"destination data lost: y reads {'zeroes' if not any(after) else 'other bytes'} "
                        f"after dedupe returned {got_y} (y extents {fmt_extents(fiemap(y, 0, 15 * B, flags=0))})")
    if got_y != (FILE_DEDUPE_RANGE_DIFFERS, 0):
        problems.append(f"zeroes vs g: (status, bytes) = {got_y}, want DIFFERS (1, 0)")
    if got_z[0] not in (FILE_DEDUPE_RANGE_SAME, FILE_DEDUPE_RANGE_DIFFERS):
        problems.append(f"zeroes vs zeroes: status {got_z[0]}")
    assert not problems, "; ".join(problems)


def test_model_rules():
    """The clone/dedupe predictions on hand-made cases, so a wrong model
    cannot silently make every comparison vacuous."""
    E = errno.EINVAL
    assert clone_expect(3 * B + 5, 0, 0, 0, 3 * B + 5, False) == (None, 3 * B + 5)
    assert clone_expect(3 * B + 5, 10 * B, 0, 0, 3 * B + 5, False) == (E, 0)     # EOF block mid-file
    assert clone_expect(3 * B + 5, 3 * B + 5, 0, 0, 3 * B + 5, False) == (None, 3 * B + 5)  # ends at dst EOF
    assert clone_expect(8 * B, 8 * B, 0, 4 * B, 4 * B, True) == (None, 4 * B)
    assert clone_expect(8 * B, 8 * B, 0, 2 * B, 4 * B, True) == (E, 0)          # overlap
    assert clone_expect(8 * B, 8 * B, 0, B, 100, False) == (E, 0)                # unaligned length
    assert clone_expect(8 * B, 8 * B, 0, 0, 9 * B, False) == (E, 0)              # past source EOF
    assert clone_expect(8 * B, 0, 4 * B, 0, 0, False) == (None, 4 * B)           # 0 = to EOF
    a = bytes(range(256)) * 64
    assert dedupe_expect(a, a, 0, 0, len(a), False) == (None, 0, len(a), False)
    b = bytearray(a)
    b[B + 7] ^= 1
    assert dedupe_expect(a, b, 0, 0, len(a), False)[1] == FILE_DEDUPE_RANGE_DIFFERS
    assert dedupe_expect(a, b, 0, 0, B, False) == (None, 0, B, False)
    assert dedupe_expect(a, b, 0, 0, len(a) + 1, False)[0] == E
    assert dedupe_expect(a, b[:B], 0, 0, 2 * B, False)[1] == -E
    z = bytes(4 * B)
    assert dedupe_expect(z, z, 0, 0, 4 * B, False) == (None, 0, 4 * B, True)


if __name__ == "__main__":
    gtest.main(globals())
