#!/usr/bin/env python3
"""Crash workload (VM #1 of scripts/crash-test).

Makes a fresh ferrofs on /dev/pmem0, mounts it -o dax and runs random
operations until a child process reboots the machine with sysrq-b after a
random delay (no sync, no unmount): creates, pwrites, fsync/fdatasync,
truncates, FICLONE/FICLONERANGE (+ CoW writes after them), mmap stores with
msync, MAP_SYNC stores (clflush+sfence from user space, no syscall), renames
(within and across directories, over existing files), unlinks, and an
open-unlinked file that is being written when the machine goes down.

The manifest ($FERROFS_RUNDIR/manifest, on the 9p run directory: every write
reaches the host before write() returns) holds one JSON object per line:
  {"dirty": P}          P is about to change in a way that is not yet durable
  {"file": P, "size": N, "sha": H, "crc": [crc32 of each 64 KiB]}
                        P must now be on media with exactly these bytes
  {"absent": P}         P must not exist any more
The last line about a path wins. "dirty" is always written (and has reached
the host) before the operation that makes it so begins, "file"/"absent" only
after the durable point returned (fsync/fdatasync of the file and fsync of its
directory, msync(MS_SYNC), or a MAP_SYNC store flushed with clflush+sfence).
The crashing child writes $FERROFS_RUNDIR/crash-marker right before
echo b > /proc/sysrq-trigger, so the host can tell the intended crash from a
workload that failed.

Environment: FERROFS_T_CRASH_SEED (default 1), FERROFS_T_CRASH_MIN/MAX
(seconds after mkfs before the crash, default 3..12).
"""
import ctypes
import ctypes.util
import fcntl
import hashlib
import json
import mmap
import os
import random
import struct
import subprocess
import sys
import time
import zlib

SEED = int(os.environ.get("FERROFS_T_CRASH_SEED", "1"))
TMIN = float(os.environ.get("FERROFS_T_CRASH_MIN", "3"))
TMAX = float(os.environ.get("FERROFS_T_CRASH_MAX", "12"))
DEV, MNT = "/dev/pmem0", "/mnt/test"
B = 4096
MAXFILE = 3 << 20
MAXFILES = 40
FICLONE = 0x40049409
FICLONERANGE = 0x4020940D
MAP_SHARED_VALIDATE, MAP_SYNC = 0x03, 0x80000
PROT_READ, PROT_WRITE, PROT_EXEC, MS_SYNC = 1, 2, 4, 4

libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int64]
libc.mmap.restype = ctypes.c_void_p
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.msync.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def digest(data):
    return {"size": len(data), "sha": hashlib.sha256(data).hexdigest(),
            "crc": [zlib.crc32(data[o:o + 65536]) for o in range(0, len(data), 65536)]}


def make_flusher():
    """clflush every line of [addr, addr+len) then sfence: what a MAP_SYNC
    user must do for its stores to be durable. x86-64 machine code:
        0: clflush [rdi]; add rdi,64; sub rsi,64; ja 0; sfence; ret"""
    code = bytes.fromhex("0fae3f" "4883c740" "4883ee40" "77f3" "0faef8" "c3")
    page = mmap.mmap(-1, 4096, prot=PROT_READ | PROT_WRITE | PROT_EXEC)
    page.write(code)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(page))
    fn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_size_t)(addr)

    def flush(a, n):
        start = a & ~63
        fn(start, n + (a - start))
    flush.page = page  # keep the code alive
    return flush


class Workload:
    def __init__(self):
        self.rng = random.Random(SEED)
        self.pool = random.Random(SEED ^ 0xC0FFEE).randbytes(MAXFILE + (1 << 20))
        self.man = os.open(os.path.join(os.environ["FERROFS_RUNDIR"], "manifest"),
                           os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.model = {}      # path -> bytearray (what the file holds now)
        self.state = {}      # path -> "file" | "dirty" | "absent" (last manifest word)
        self.seq = 0
        self.flush = make_flusher()
        self.orphan = None
        self.counts = {}

    # -- manifest -----------------------------------------------------------
    def emit(self, rec):
        line = (json.dumps(rec, separators=(",", ":")) + "\n").encode()
        if os.write(self.man, line) != len(line):
            raise OSError("short manifest write")

    def dirty(self, *paths):
        for p in paths:
            if self.state.get(p) != "dirty":
                self.emit({"dirty": p})
                self.state[p] = "dirty"

    def durable(self, p):
        self.emit(dict({"file": p}, **digest(bytes(self.model[p]))))
        self.state[p] = "file"

    def gone(self, p):
        self.emit({"absent": p})
        self.state[p] = "absent"

    # -- helpers ------------------------------------------------------------
    def data(self, n):
        o = self.rng.randrange(len(self.pool) - n)
        return self.pool[o:o + n]

    def newname(self):
        self.seq += 1
        return f"{MNT}/d{self.rng.randrange(3)}/f{self.seq}"

    def fsync_dir(self, p):
        fd = os.open(os.path.dirname(p), os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(fd)
        os.close(fd)

    def pick(self, want_size=False):
        c = [p for p, m in self.model.items() if not want_size or len(m) > 0]
        return self.rng.choice(sorted(c)) if c else None

    def mwrite(self, p, off, d):
        m = self.model[p]
        if off > len(m):
            m.extend(bytes(off - len(m)))
        m[off:off + len(d)] = d

    def sizeish(self):
        r = self.rng.random()
        if r < 0.3:
            return self.rng.randint(0, 3 * B)
        if r < 0.8:
            return self.rng.randint(B, 512 << 10)
        return self.rng.randint(1 << 20, MAXFILE)

    # -- operations -----------------------------------------------------------
    def op_create(self):
        if len(self.model) >= MAXFILES:
            return self.op_unlink()
        p = self.newname()
        self.dirty(p)
        fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        self.model[p] = bytearray()
        n = self.sizeish()
        off = 0
        while off < n:
            k = min(n - off, self.rng.randint(1, 256 << 10))
            d = self.data(k)
            os.pwrite(fd, d, off)
            self.mwrite(p, off, d)
            off += k
        (os.fsync if self.rng.random() < 0.5 else os.fdatasync)(fd)
        os.close(fd)
        self.fsync_dir(p)
        self.durable(p)

    def op_write(self):
        p = self.pick()
        if p is None:
            return self.op_create()
        self.dirty(p)
        fd = os.open(p, os.O_RDWR)
        size = len(self.model[p])
        off = self.rng.randint(0, min(size + B, MAXFILE - 1))
        n = min(self.rng.randint(1, 300 << 10), MAXFILE - off)
        d = self.data(n)
        os.pwrite(fd, d, off)
        self.mwrite(p, off, d)
        if self.rng.random() < 0.8:   # otherwise stays dirty: its content is unknown
            (os.fsync if self.rng.random() < 0.5 else os.fdatasync)(fd)
            self.durable(p)
        os.close(fd)

    def op_truncate(self):
        p = self.pick()
        if p is None:
            return self.op_create()
        self.dirty(p)
        fd = os.open(p, os.O_RDWR)
        size = len(self.model[p])
        new = self.rng.randint(0, size) if self.rng.random() < 0.6 else self.rng.randint(size, MAXFILE)
        os.ftruncate(fd, new)
        m = self.model[p]
        if new < size:
            del m[new:]
        else:
            m.extend(bytes(new - size))
        os.fsync(fd)
        os.close(fd)
        self.durable(p)

    def op_reflink(self):
        s = self.pick()
        if s is None:
            return self.op_create()
        if self.rng.random() < 0.5 or len(self.model) >= MAXFILES:
            d = self.pick()
            if d == s:
                return self.op_write()
        else:
            d = self.newname()
        self.dirty(d)
        sfd = os.open(s, os.O_RDONLY)
        dfd = os.open(d, os.O_RDWR | os.O_CREAT, 0o644)
        self.model.setdefault(d, bytearray())
        src = self.model[s]
        if self.rng.random() < 0.5 or len(src) < B:
            if len(src) % B and len(self.model[d]) > len(src):
                os.ftruncate(dfd, 0)   # else EINVAL: an unaligned EOF block may not land mid-file
                self.model[d] = bytearray()
            fcntl.ioctl(dfd, FICLONE, sfd)
            # FICLONE remaps [0, src EOF): a longer destination keeps its tail
            # and its size (as on XFS); the model once said "becomes src"
            self.mwrite(d, 0, bytes(src))
        else:
            soff = self.rng.randrange(0, len(src), B)
            n = self.rng.randint(1, (len(src) - soff) // B) * B if len(src) - soff >= B else len(src) - soff
            doff = self.rng.randrange(0, min(len(self.model[d]), MAXFILE - n) + 1, B) if len(self.model[d]) else 0
            if n % B and doff + n < len(self.model[d]):
                doff = (len(self.model[d]) + B - 1) // B * B   # an unaligned EOF block may not land mid-file
            if doff + n > MAXFILE:
                os.close(sfd), os.close(dfd)
                return
            fcntl.ioctl(dfd, FICLONERANGE, struct.pack("qQQQ", sfd, soff, n, doff))
            self.mwrite(d, doff, bytes(src[soff:soff + n]))
        os.fsync(dfd)
        self.fsync_dir(d)
        self.durable(d)
        if self.rng.random() < 0.5 and self.model[d]:
            # CoW write into the clone: the source must not change. DAX
            # stores reach media at once, so d is dirty until fdatasync
            # returns (the manifest used to call it durable meanwhile)
            self.dirty(d)
            off = self.rng.randrange(len(self.model[d]))
            w = self.data(self.rng.randint(1, 20000))
            os.pwrite(dfd, w, off)
            self.mwrite(d, off, w)
            os.fdatasync(dfd)
            self.durable(d)
        os.close(sfd)
        os.close(dfd)

    def op_mmap(self):
        p = self.pick(want_size=True)
        if p is None:
            return self.op_create()
        self.dirty(p)
        fd = os.open(p, os.O_RDWR)
        size = len(self.model[p])
        m = mmap.mmap(fd, size)
        for _ in range(self.rng.randint(1, 4)):
            off = self.rng.randrange(size)
            d = self.data(min(size - off, self.rng.randint(1, 64 << 10)))
            m[off:off + len(d)] = d
            self.mwrite(p, off, d)
        m.flush()            # msync(MS_SYNC)
        m.close()
        os.close(fd)
        self.durable(p)

    def op_mapsync(self):
        p = self.pick(want_size=True)
        if p is None or self.state.get(p) != "file":
            return self.op_mmap()   # size and mapping must be durable already
        fd = os.open(p, os.O_RDWR)
        size = len(self.model[p])
        addr = libc.mmap(None, size, PROT_READ | PROT_WRITE, MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap MAP_SYNC")
        self.dirty(p)
        for _ in range(self.rng.randint(1, 4)):
            off = self.rng.randrange(size)
            d = self.data(min(size - off, self.rng.randint(1, 32 << 10)))
            ctypes.memmove(addr + off, d, len(d))   # faults (and CoWs) with metadata made durable
            self.flush(addr + off, len(d))
            self.mwrite(p, off, d)
        self.durable(p)      # no fsync, no msync: MAP_SYNC + cache flush is the durable point
        libc.munmap(addr, size)
        os.close(fd)

    def op_rename(self):
        p = self.pick()
        if p is None:
            return self.op_create()
        q = self.pick() if self.rng.random() < 0.3 else self.newname()
        if q == p:
            return self.op_write()
        if self.state.get(p) == "dirty":
            fd = os.open(p, os.O_RDONLY)   # make its content known first
            os.fsync(fd)
            os.close(fd)
            self.durable(p)
        self.dirty(p, q)
        os.rename(p, q)
        self.model[q] = self.model.pop(p)
        self.fsync_dir(q)
        if os.path.dirname(p) != os.path.dirname(q):
            self.fsync_dir(p)
        self.gone(p)
        self.durable(q)

    def op_unlink(self):
        p = self.pick()
        if p is None:
            return self.op_create()
        self.dirty(p)
        os.unlink(p)
        del self.model[p]
        self.fsync_dir(p)
        self.gone(p)

    def op_orphan(self):
        """An open, unlinked file being written: mount must reap it."""
        if self.orphan is None:
            p = self.newname()
            self.dirty(p)
            self.orphan = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
            os.unlink(p)
            self.fsync_dir(p)
            self.gone(p)
        os.pwrite(self.orphan, self.data(self.rng.randint(1, 256 << 10)), self.rng.randrange(MAXFILE // 2))
        if self.rng.random() < 0.5:
            os.fsync(self.orphan)

    OPS = [("create", 14), ("write", 20), ("truncate", 6), ("reflink", 12), ("mmap", 8),
           ("mapsync", 8), ("rename", 8), ("unlink", 6), ("orphan", 4)]

    def run(self, deadline):
        names = [n for n, _ in self.OPS]
        weights = [w for _, w in self.OPS]
        n = 0
        while time.monotonic() < deadline + 30:
            name = self.rng.choices(names, weights)[0]
            struct.pack_into("QQ", self.progress, 0, n, names.index(name))
            getattr(self, "op_" + name)()
            self.counts[name] = self.counts.get(name, 0) + 1
            n += 1
            if n % 50 == 0:
                print(f"workload: {n} ops {self.counts}", flush=True)
        raise SystemExit("workload: the crash never came")


def storm(seed):
    """Concurrent metadata churn in storm/ (never in the manifest): many small
    transactions (fragmented writes, punches, reflinks, renames, unlinks), so
    that the crash often lands inside one and mount has to roll it back."""
    rng = random.Random(seed)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    d = f"{MNT}/storm"
    names = []
    i = 0
    while True:
        i += 1
        p = f"{d}/s{i}"
        fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
        for _ in range(rng.randint(1, 24)):
            os.pwrite(fd, b"s" * rng.randint(1, 3 * B), rng.randrange(0, 1 << 20, B))
        if rng.random() < 0.5:
            libc.fallocate(fd, 3, rng.randrange(0, 1 << 20, B), rng.randint(1, 64) * B)   # punch
        if names and rng.random() < 0.5:
            q = rng.choice(names)
            try:
                sfd = os.open(q, os.O_RDONLY)
                os.ftruncate(fd, 0)
                fcntl.ioctl(fd, FICLONE, sfd)
                os.close(sfd)
            except FileNotFoundError:
                pass
        os.close(fd)
        if rng.random() < 0.3:
            os.rename(p, p + "r")
            p += "r"
        names.append(p)
        while len(names) > 30:
            os.unlink(names.pop(rng.randrange(len(names))))


def sh(cmd):
    subprocess.run(cmd, shell=True, check=True)


def main():
    sh(f"insmod {os.environ['FERROFS_KO']}")
    sh(f"mkfs.ferrofs -f -q {DEV}")
    sh(f"mount -t ferrofs -o dax {DEV} {MNT}")
    for d in ("d0", "d1", "d2", "storm"):
        os.mkdir(f"{MNT}/{d}")
    w = Workload()
    # progress shared with the crashing child: ops done, op in progress
    shared = mmap.mmap(-1, 4096)
    w.progress = shared
    if os.fork() == 0:
        try:
            storm(SEED)
        finally:
            os._exit(1)
    delay = random.Random(SEED * 7919).uniform(TMIN, TMAX)
    print(f"workload: seed {SEED}, crash in {delay:.1f}s", flush=True)
    marker = os.path.join(os.environ["FERROFS_RUNDIR"], "crash-marker")
    pid = os.fork()
    if pid == 0:
        time.sleep(delay)
        nops, opi = struct.unpack_from("QQ", shared, 0)
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, f"crash after {delay:.1f}s, {nops} ops done, in {w.OPS[opi][0]}\n".encode())
        os.close(fd)
        print("workload: CRASHING NOW (sysrq-b)", flush=True)
        with open("/proc/sysrq-trigger", "w") as f:
            f.write("b")
        time.sleep(60)
        os._exit(1)
    w.run(time.monotonic() + delay)


if __name__ == "__main__":
    main()
