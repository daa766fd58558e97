#!/usr/bin/env python3
"""Fault injection: slab allocation failures (failslab, and fail_page_alloc
where the kernel has it) and failed loads from pmem (ferrofs's own
fail_media_load, a machine check on a metadata or CoW source block) inside
mount, create, write, reflink, CoW write, CoW fault, xattr set and the other
operations. An allocation failure answers ENOMEM, a media failure EIO (and a
dmesg line naming the device and block).

failslab is armed for one task only (task-filter, /proc/self/make-it-fail
set by tests/guest/stress/faultops.c just around the operation), with
probability 100 and times 1, and `space` sweeping the allocation budget so
that the failure lands at a different allocation each trial. Each trial:
the operation succeeds or fails with ENOMEM (a CoW fault may also SIGBUS),
never an oops, WARN or lockdep report; the filesystem stays usable. After
each operation's trials: umount, fsck.ferrofs -n clean, mount again. At
the end the module must unload (the runner's rmmod). Faults injected are
counted from failslab's `times` counter (1 -> 0 when one fired).
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stresslib as S
from fsutil import clone, mount_errno, pattern

DBG = "/sys/kernel/debug"
OPS = ["mount", "create", "mkdir", "symlink", "link", "rename", "unlink", "write", "truncate", "punch",
       "fallocate", "reflink", "cow-write", "cow-fault", "xattr-small", "xattr-big", "fsync", "readdir", "read"]
# what each operation may answer besides success and the attribute's errno
ALSO_OK = {"cow-fault": {"sigbus"}}
# fault attributes (under /sys/kernel/debug) and the errno each injects
ATTRS = {"failslab": "ENOMEM", "fail_page_alloc": "ENOMEM", "ferrofs/fail_media_load": "EIO"}


def wr(attr, name, v):
    with open(f"{DBG}/{attr}/{name}", "w") as f:
        f.write(str(v))


def rd(attr, name):
    with open(f"{DBG}/{attr}/{name}") as f:
        return f.read().strip()


def configure(attr):
    wr(attr, "task-filter", "Y")
    wr(attr, "verbose", 0)  # 1 and 2 print a stack trace per failure
    wr(attr, "probability", 100)
    wr(attr, "interval", 1)
    wr(attr, "times", 0)
    wr(attr, "space", 0)
    if attr == "ferrofs/fail_media_load":
        return  # a plain fault_attr: no gfp knobs
    wr(attr, "ignore-gfp-wait", "N")  # also fail GFP_KERNEL allocations
    if attr == "fail_page_alloc":
        wr(attr, "ignore-gfp-highmem", "N")
        wr(attr, "min-order", 0)


# operations that may change src's bytes (the others must leave them alone)
CHANGES_SRC = {"write", "truncate", "punch", "fallocate", "fsync"}
expected = {}  # directory -> (operation, src's bytes)


def prepare(d, op):
    """The files faultops expects in d."""
    os.makedirs(d, exist_ok=True)
    data = pattern(len(expected) + 1, 64 << 10)
    expected[d] = (op, data)
    with open(f"{d}/src", "wb") as f:
        f.write(data)
    for n in ("victim",):
        open(f"{d}/{n}", "wb").close()
    fs = os.open(f"{d}/src", os.O_RDONLY)
    fc = os.open(f"{d}/clone", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    clone(fs, fc)
    os.close(fs)
    os.close(fc)


def main():
    attrs = [a for a in ATTRS if os.path.isdir(f"{DBG}/{a}")]
    for need in ("failslab", "ferrofs/fail_media_load"):
        if need not in attrs:
            print(f"FAILED: /sys/kernel/debug/{need} missing (CONFIG_FAILSLAB, CONFIG_FAULT_INJECTION_DEBUG_FS)")
            sys.exit(1)
    if os.environ.get("FERROFS_T_STRESS_PAGE_ALLOC") != "1" and "fail_page_alloc" in attrs:
        # page allocation failures print "page allocation failure" with a
        # stack trace (warn_alloc), which the log checks cannot tell from a bug
        attrs.remove("fail_page_alloc")
    long = S.knob("LONG", 0) == 1
    spaces = [0, 4096] if not long else \
        [0, 16, 32, 64, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384, 32768, 65536]
    rounds = S.knob("FAULT_ROUNDS", 1, 1)  # x21 spaces x19 operations x2 attributes (a second round repeats the sweep)
    fo = S.build_c("faultops")
    k = S.Kmsg()
    S.sh(f"mkfs.ferrofs -f -q {S.DEV}")
    S.sh(f"mount -t ferrofs -o dax {S.DEV} {S.MNT}")
    injected = trials = 0
    results = {}
    bad = []
    t0 = time.time()
    for attr in attrs:
        configure(attr)
        for op in OPS:
            for rnd in range(rounds):
                for sp in spaces:
                    tag = attr.split("/")[-1]
                    d = f"{S.MNT}/{op}-{tag}-{rnd}-{sp}"
                    if op != "mount":
                        prepare(d, op)
                    else:
                        S.sh(f"umount {S.MNT}")
                        d = S.MNT
                    wr(attr, "space", sp)
                    wr(attr, "times", 1)
                    r = subprocess.run([fo, op, d, S.DEV], capture_output=True, text=True, timeout=120)
                    left = int(rd(attr, "times"))
                    wr(attr, "times", 0)
                    fired = 1 - left
                    injected += fired
                    trials += 1
                    if r.returncode != 0:
                        bad.append(f"{attr} {op} space={sp}: faultops exited {r.returncode}: {r.stderr.strip()}")
                        continue
                    out = r.stdout.strip()
                    res = out.split(" ", 1)[1] if " " in out else out
                    key = (tag, op, res + (" (fired)" if fired and res == "ok" else ""))
                    results[key] = results.get(key, 0) + 1
                    ok = res == "ok" or res == f"errno {ATTRS[attr]}" or res in ALSO_OK.get(op, ())
                    if not ok:
                        bad.append(f"{attr} {op} space={sp} (fault fired: {bool(fired)}): {res}")
                    if res != "ok" and not fired:
                        bad.append(f"{attr} {op} space={sp}: failed ({res}) although no fault fired")
                    if op == "mount":
                        if res == "ok":
                            S.sh(f"umount {S.MNT}")
                        # a failed mount must leave the device free to mount
                        got = mount_errno(S.DEV, S.MNT)
                        if got != "OK":
                            bad.append(f"{attr} mount space={sp}: mounting again after '{res}' gave {got}")
                            S.sh(f"mount -t ferrofs -o dax {S.DEV} {S.MNT}")
                    k.check(f"{attr} {op} space={sp}")
            # the filesystem after this operation's failures: consistent
            # (short run: after the last operation only)
            if not long and op != OPS[-1]:
                continue
            os.chdir("/")
            S.sh(f"umount {S.MNT}")
            try:
                S.fsck_clean()
            except AssertionError as e:
                bad.append(f"after {attr} {op}: {e}")
            S.sh(f"mount -t ferrofs -o dax {S.DEV} {S.MNT}")
            # and usable: every source whose operation does not write it
            # (reflink, CoW write and CoW fault included) has its bytes
            for d, (dop, data) in expected.items():
                if dop in CHANGES_SRC:
                    continue
                with open(f"{d}/src", "rb") as f:
                    if f.read() != data:
                        bad.append(f"after {attr} {op}: {d}/src does not hold what was written")
        wr(attr, "probability", 0)
    S.sh(f"umount {S.MNT}")
    S.fsck_clean()
    k.check("fault injection")
    summ = {}
    for (_, op, res), n in sorted(results.items()):
        summ[res] = summ.get(res, 0) + n
    print(f"fault injection ({', '.join(attrs)}): {trials} trials, {injected} faults injected in "
          f"{time.time() - t0:.0f}s; outcomes {summ}")
    for (tag, op, res), n in sorted(results.items()):
        print(f"  {tag:16} {op:12} {res:24} {n}")
    S.summary("faults", trials=trials, injected=injected, failed=len(bad))
    if bad:
        print("FAILED:\n  " + "\n  ".join(bad[:40]))
        sys.exit(1)
    if injected == 0:
        print("FAILED: no fault was injected: failslab did not fire")
        sys.exit(1)


if __name__ == "__main__":
    main()
