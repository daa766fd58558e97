#!/usr/bin/env python3
"""Concurrency across files: on one ferrofs mount, at the same time,
- fsstress.c with N processes (mixed metadata, data, reflink, dedupe, mmap)
  on one directory,
- two independent fsx runs (tests/guest/posix/40-fsx.py's Fsx, each in its
  own process on its own file(s), every result checked against its model;
  remounts replaced by close and reopen, since the mount is shared),
- readers of a third file, `ref/r`, a reflink of `ref/src` and of
  `ref/pristine`: one thread preads and stats it, one maps fresh windows of
  it (MAP_SHARED, read faults) and reads them, and every byte read is
  compared with what the file holds. Meanwhile a mutator thread writes over
  `ref/src` (copy-on-write away from the blocks r shares) and reflinks
  ranges of `ref/pristine` over r (same bytes, new mapping: the readers'
  pages are unmapped and fault back in),
- and the inode and dentry caches dropped every 3 s.
Readers run from before the writers start until after they all finish, so
they race every writer. Passes when every fsx verified, fsstress had no
unexpected errno, the readers always saw the right bytes, the kernel log has
no lockdep/KASAN/WARN/hung-task report, the filesystem unmounts,
fsck.ferrofs -n is clean, and after mounting again r, pristine and src
(against the mutator's model) read back right.

Knobs (short defaults, `make stress` sets FERROFS_T_STRESS_LONG=1 for the
long ones): FERROFS_T_PAR_PROCS (fsstress processes, 4; 6 long),
FERROFS_T_PAR_SECONDS (fsstress seconds, 120; 600 long), FERROFS_T_PAR_FSX_OPS
(operations per fsx, 1500; 6000 long), FERROFS_T_PAR_FSX_FILES (files per
fsx, 1), FERROFS_T_PAR_SEED (1), FERROFS_T_PAR_REF_MIB (size of the read
file, 8).

Run alone: scripts/vm-run --pmem 1 --timeout 1200 -- sh -c
'insmod $FERROFS_KO && tests/guest/stress/45-parallel.py'
"""
import ctypes
import importlib.util
import os
import random
import re
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import stresslib as S  # noqa: E402
from fsutil import clone, clone_range  # noqa: E402

B = 4096
PROT_READ, MAP_SHARED = 1, 1
libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int64]
libc.mmap.restype = ctypes.c_void_p
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
MAP_FAILED = ctypes.c_void_p(-1).value


def knob(name, short, long=None):
    """FERROFS_T_PAR_<NAME> (stresslib.knob with this test's prefix)."""
    return S.knob(name, short, long, prefix="FERROFS_T_PAR_")


def fsx_main(d, seed, nops, nfiles):
    """`45-parallel.py --fsx DIR SEED OPS FILES`: one fsx run in DIR."""
    os.environ.setdefault("FERROFS_T_FSX_CHECK", "250")
    spec = importlib.util.spec_from_file_location(
        "fsx", os.path.join(HERE, "..", "posix", "40-fsx.py"))
    fsx = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fsx)
    os.chdir(d)
    f = fsx.Fsx(seed, nops, nfiles=nfiles, remount=False)
    f.run()
    print("fsx-ops: " + " ".join(f"{k}={v}" for k, v in sorted(f.counts.items())), flush=True)


class Failure(Exception):
    pass


class Ref:
    """ref/r and the threads that read it and remap it under them."""

    def __init__(self, root, size, seed):
        self.root = root
        self.size = size
        self.rng = random.Random(seed)
        self.data = random.Random(seed ^ 0xF00D).randbytes(size)
        self.src_model = bytearray(self.data)
        os.mkdir(root)
        fd = os.open(f"{root}/src", os.O_RDWR | os.O_CREAT, 0o644)
        os.write(fd, self.data)
        os.fsync(fd)
        for n in ("r", "pristine"):
            d = os.open(f"{root}/{n}", os.O_RDWR | os.O_CREAT, 0o644)
            clone(fd, d)
            os.close(d)
        os.close(fd)
        self.stop = threading.Event()
        self.errors = []
        self.counts = {"pread": 0, "pread_bytes": 0, "stat": 0, "map_windows": 0, "map_bytes": 0,
                       "cow_writes": 0, "reflinks_over_r": 0, "reshares": 0}
        self.lock = threading.Lock()

    def bump(self, k, n=1):
        with self.lock:
            self.counts[k] += n

    def fail(self, msg):
        self.errors.append(msg)
        self.stop.set()

    def check(self, got, off, how):
        want = self.data[off:off + len(got)]
        if got != want:
            k = next((j for j in range(min(len(got), len(want))) if got[j] != want[j]), min(len(got), len(want)))
            self.fail(f"ref/r: {how} at {off:#x}+{len(got):#x}: first wrong byte at {off + k:#x} "
                      f"(got {bytes(got[k:k + 16]).hex()}, want {bytes(want[k:k + 16]).hex()}; "
                      f"{len(got)} bytes read, {len(want)} expected)")
            return False
        return True

    def window(self, rng):
        off = rng.randrange(0, self.size, B) if rng.random() < 0.7 else rng.randrange(self.size)
        n = min(rng.choice([1, 100, B, 3 * B + 7, 64 << 10, 256 << 10]), self.size - off)
        return off, n

    def pread_thread(self):
        rng = random.Random(self.rng.random())
        try:
            fd = os.open(f"{self.root}/r", os.O_RDONLY)
            while not self.stop.is_set():
                off, n = self.window(rng)
                if not self.check(os.pread(fd, n, off), off, "pread"):
                    break
                self.bump("pread")
                self.bump("pread_bytes", n)
                st = os.stat(f"{self.root}/r")
                if st.st_size != self.size:
                    self.fail(f"ref/r: stat size {st.st_size}, want {self.size}")
                self.bump("stat")
            os.close(fd)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            self.fail(f"pread thread: {e!r}")

    def map_thread(self):
        rng = random.Random(self.rng.random())
        try:
            fd = os.open(f"{self.root}/r", os.O_RDONLY)
            while not self.stop.is_set():
                off, n = self.window(rng)
                moff = off // B * B
                ln = off + n - moff
                a = libc.mmap(None, ln, PROT_READ, MAP_SHARED, fd, moff)
                if a in (None, MAP_FAILED):
                    self.fail(f"mmap ref/r at {moff:#x}: {os.strerror(ctypes.get_errno())}")
                    break
                try:
                    # the first load of each page is a read fault
                    got = ctypes.string_at(a + off - moff, n)
                finally:
                    libc.munmap(a, ln)
                if not self.check(got, off, "mmap load"):
                    break
                self.bump("map_windows")
                self.bump("map_bytes", n)
            os.close(fd)
        except Exception as e:  # noqa: BLE001
            self.fail(f"map thread: {e!r}")

    def mutator_thread(self):
        """Copy-on-write writes into src (r must not see them) and reflinks
        of pristine over r and over src (same bytes, new mappings)."""
        rng = random.Random(self.rng.random())
        try:
            src = os.open(f"{self.root}/src", os.O_RDWR)
            r = os.open(f"{self.root}/r", os.O_RDWR)
            pr = os.open(f"{self.root}/pristine", os.O_RDONLY)
            while not self.stop.wait(0.05):
                k = rng.random()
                off = rng.randrange(0, self.size, B)
                n = min(rng.randint(1, 32) * B, self.size - off)
                if k < 0.5:
                    o = off + rng.randrange(B)
                    d = rng.randbytes(min(rng.randint(1, 3 * B), self.size - o))
                    os.pwrite(src, d, o)
                    self.src_model[o:o + len(d)] = d
                    self.bump("cow_writes")
                elif k < 0.85:
                    clone_range(pr, off, n, r, off)
                    self.bump("reflinks_over_r")
                else:
                    clone_range(pr, off, n, src, off)
                    self.src_model[off:off + n] = self.data[off:off + n]
                    self.bump("reshares")
            for fd in (src, r, pr):
                os.close(fd)
        except Exception as e:  # noqa: BLE001
            self.fail(f"mutator thread: {e!r}")

    def verify_files(self, when):
        for n, want in (("r", self.data), ("pristine", self.data), ("src", bytes(self.src_model))):
            with open(f"{self.root}/{n}", "rb") as f:
                got = f.read()
            if got != want:
                k = next((j for j in range(min(len(got), len(want))) if got[j] != want[j]), min(len(got), len(want)))
                raise Failure(f"ref/{n} {when}: {len(got)} bytes, first difference at {k:#x}")


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "--fsx":
        return fsx_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    procs = knob("PROCS", 4, 6)
    secs = knob("SECONDS", 120, 600)
    fsx_ops = knob("FSX_OPS", 1500, 6000)
    fsx_files = knob("FSX_FILES", 1)
    seed = knob("SEED", 1)
    ref_mib = knob("REF_MIB", 8)
    exe = S.build_c("fsstress")
    k = S.Kmsg()
    S.sh(f"mkfs.ferrofs -f -q {S.DEV}")
    S.sh(f"mount -t ferrofs -o dax {S.DEV} {S.MNT}")
    S.mark(f"45-parallel: fsstress x{procs} {secs}s, 2 fsx x{fsx_ops} ops, readers of a reflinked file")
    ref = Ref(f"{S.MNT}/ref", ref_mib << 20, seed)
    threads = [threading.Thread(target=t, daemon=True)
               for t in (ref.pread_thread, ref.map_thread, ref.mutator_thread)]
    for t in threads:
        t.start()
    stop_drop = S.cache_dropper()
    t0 = time.time()
    logs = {}
    procs_ = {}
    for n in ("fsx1", "fsx2"):
        os.mkdir(f"{S.MNT}/{n}")
        logs[n] = open(f"/tmp/45-{n}.log", "w+")
        s = seed * 1000 + (1 if n == "fsx1" else 2)
        procs_[n] = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--fsx", f"{S.MNT}/{n}",
                                      str(s), str(fsx_ops), str(fsx_files)],
                                     stdout=logs[n], stderr=subprocess.STDOUT)
    logs["fsstress"] = open("/tmp/45-fsstress.log", "w+")
    procs_["fsstress"] = subprocess.Popen([exe, f"{S.MNT}/run", str(procs), str(secs), str(seed)],
                                          stdout=logs["fsstress"], stderr=subprocess.STDOUT)
    done = {}
    deadline = t0 + secs + 3000
    while len(done) < len(procs_):
        for n, p in procs_.items():
            if n not in done and p.poll() is not None:
                done[n] = (p.returncode, time.time() - t0)
                print(f"{n} finished after {done[n][1]:.0f}s, exit {p.returncode}", flush=True)
        if ref.stop.is_set() or time.time() > deadline:
            break
        k.new()  # keep up with the log (small ring buffer)
        time.sleep(1)
    reader_stopped_early = ref.stop.is_set()
    ref.stop.set()
    stop_drop()
    for t in threads:
        t.join(60)
    for n, p in procs_.items():
        if p.poll() is None:
            p.kill()
            p.wait()
            done.setdefault(n, (None, time.time() - t0))
    out = {}
    for n, f in logs.items():
        f.seek(0)
        out[n] = f.read()
        f.close()
    problems = list(ref.errors)
    if reader_stopped_early and not ref.errors:
        problems.append("the readers stopped early")
    for n in ("fsx1", "fsx2"):
        rc = done[n][0]
        m = re.search(r"^fsx: (\d+) ops in", out[n], re.M)
        if rc != 0 or not m:
            problems.append(f"{n} exited {rc}:\n" + "\n".join(out[n].splitlines()[-40:]))
        else:
            print(f"{n}: {m.group(0)} {done[n][1]:.0f}s; " + (re.search(r"^fsx-ops: .*", out[n], re.M) or [""])[0])
    m = re.search(r"fsstress: (\d+) ops .* (\d+) unexpected errors", out["fsstress"])
    fss_ops = int(m.group(1)) if m else 0
    fss_bad = int(m.group(2)) if m else -1
    if done["fsstress"][0] != 0 or not m or fss_bad:
        problems.append("fsstress exited %s, %s unexpected errors:\n%s" % (
            done["fsstress"][0], fss_bad, "\n".join(out["fsstress"].splitlines()[-40:])))
    else:
        print(out["fsstress"].rstrip())
    c = ref.counts
    print(f"readers: {c['pread']} preads ({c['pread_bytes'] >> 20} MiB), {c['stat']} stats, "
          f"{c['map_windows']} mapped windows ({c['map_bytes'] >> 20} MiB faulted and read), all verified; "
          f"mutator: {c['cow_writes']} CoW writes into src, {c['reflinks_over_r']} reflinks over r, "
          f"{c['reshares']} reflinks back into src", flush=True)
    if c["pread"] == 0 or c["map_windows"] == 0 or c["reflinks_over_r"] == 0:
        problems.append(f"a reader or the mutator did nothing: {c}")
    if problems:
        print("FAILED:\n" + "\n".join(problems))
        sys.exit(1)
    ref.verify_files("before umount")
    k.check("45-parallel")
    os.chdir("/")
    S.sh(f"umount {S.MNT}")
    S.fsck_clean()
    S.sh(f"mount -t ferrofs -o dax {S.DEV} {S.MNT}")
    ref.verify_files("after a remount")
    n = 0
    for root, dirs, files in os.walk(S.MNT):
        for f in files:
            p = os.path.join(root, f)
            if not os.path.islink(p):
                with open(p, "rb") as fh:
                    while fh.read(1 << 20):
                        pass
                n += 1
    S.sh(f"umount {S.MNT}")
    S.fsck_clean()
    k.check("45-parallel, after the remount")
    dt = time.time() - t0
    print(f"45-parallel: {fss_ops} fsstress ops ({procs} processes, {secs}s), 2 x {fsx_ops} fsx ops, "
          f"{c['pread'] + c['map_windows']} verified reads; fsck clean; {n} files read after a remount; {dt:.0f}s")
    S.summary("parallel", fsstress_ops=fss_ops, fsx_ops=2 * fsx_ops, reads=c["pread"] + c["map_windows"],
              seconds=int(dt), failed=0)


if __name__ == "__main__":
    main()
