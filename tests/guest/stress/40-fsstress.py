#!/usr/bin/env python3
"""Concurrency: tests/guest/stress/fsstress.c with N processes doing mixed
operations (create, write, read, mmap stores and loads, truncate, punch,
zero range, fallocate, reflink, dedupe, copy_file_range, rename incl.
EXCHANGE, unlink, link, symlink, mkdir, rmdir, xattrs, fsync) on shared
files and directories for a while, with the inode and dentry caches
dropped every few seconds so eviction races with everything else.
Passes when no operation failed with an errno races cannot explain, the
kernel log has no lockdep/KASAN/WARN/hung-task report, the filesystem
unmounts, fsck.ferrofs -n is clean, and it mounts again.
FERROFS_T_STRESS_PROCS (4), FERROFS_T_STRESS_SECONDS (60; 300 long),
FERROFS_T_STRESS_SEED (1), FERROFS_T_STRESS_PASSES (1; 2 long: a second
pass on the aged filesystem)."""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stresslib as S


def main():
    procs = S.knob("PROCS", 4, 6)
    secs = S.knob("SECONDS", 60, 300)
    seed = S.knob("SEED", 1)
    passes = S.knob("PASSES", 1, 2)
    exe = S.build_c("fsstress")
    k = S.Kmsg()
    S.sh(f"mkfs.ferrofs -f -q {S.DEV}")
    S.sh(f"mount -t ferrofs -o dax {S.DEV} {S.MNT}")
    total = unexpected = 0
    t0 = time.time()
    for p in range(passes):
        stop = S.cache_dropper()
        r = subprocess.run([exe, f"{S.MNT}/run", str(procs), str(secs), str(seed + p)],
                           capture_output=True, text=True, timeout=secs + 300)
        stop()
        print(r.stdout, end="")
        if r.stderr:
            print(r.stderr, end="")
        m = re.search(r"fsstress: (\d+) ops .* (\d+) unexpected errors", r.stdout)
        if not m:
            print(f"FAILED: fsstress exited {r.returncode} without its summary")
            sys.exit(1)
        total += int(m.group(1))
        unexpected += int(m.group(2))
        k.check(f"fsstress pass {p + 1}")
        os.chdir("/")
        S.sh(f"umount {S.MNT}")
        S.fsck_clean()
        S.sh(f"mount -t ferrofs -o dax {S.DEV} {S.MNT}")
        # everything is still readable after the remount
        n = 0
        for root, dirs, files in os.walk(f"{S.MNT}/run"):
            for f in files:
                p_ = os.path.join(root, f)
                if os.path.islink(p_):
                    continue
                with open(p_, "rb") as fh:
                    while fh.read(1 << 20):
                        pass
                n += 1
        print(f"pass {p + 1}: fsck clean, {n} files read back after a remount")
    S.sh(f"umount {S.MNT}")
    S.fsck_clean()
    k.check("fsstress")
    print(f"fsstress: {total} ops in {passes} pass(es), {procs} processes, {time.time() - t0:.0f}s, "
          f"{unexpected} unexpected errors")
    S.summary("fsstress", ops=total, procs=procs, seconds=secs * passes, failed=unexpected)
    sys.exit(1 if unexpected else 0)


if __name__ == "__main__":
    main()
