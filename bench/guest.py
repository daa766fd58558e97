#!/usr/bin/env python3
"""In-guest driver of `make bench` (run by scripts/bench through scripts/vm-run).

Compiles bench/fsbench.c with gcc, then for every repetition runs the raw
device test and every filesystem (ferrofs, XFS reflink=1 -o dax, ext4 -o dax)
in an order shuffled per repetition (seed printed; FERROFS_T_BENCH_SEED
replays it). Each filesystem is made afresh on /dev/pmem0, mounted with
-o dax, runs each benchmark of the plan and is unmounted. The raw figures go
to $FERROFS_RUNDIR/bench-$FERROFS_T_BENCH_TAG.json; progress goes to stdout.
"""
import json
import os
import platform
import random
import re
import subprocess
import sys
import time

SRC = os.environ["FERROFS_SRC"]
DEV = os.environ.get("FERROFS_T_BENCH_DEV", "/dev/pmem0")
MNT = "/mnt/test"
FULL = os.environ.get("FERROFS_T_BENCH_FULL", "0") == "1"
ONLY = [f for f in os.environ.get("FERROFS_T_BENCH_FS", "").split(",") if f]
BIN = "/tmp/fsbench"
# the parts of the plan, in the order they run on each filesystem ("device" is
# the raw device test); FERROFS_T_BENCH_PARTS (PARTS= for make bench) picks some
PARTS = ["device", "reflink", "cow", "bw", "append", "mmap", "meta", "scale", "par"]

# Quick mode has to finish in under 25 minutes on a 2-core machine under TCG,
# where one create/rename/unlink costs 1-6 ms: the directory rows use N=2000
# there (FERROFS_T_BENCH_META_N overrides it). Five repetitions in both modes:
# with fewer, the rank test behind the verdict cannot separate anything
# (bench/verdict.py). THREADS is 1 and 2 in both modes (the scaling
# target is 2 threads over 1); scripts/bench gives the VM a vCPU per thread.
P = dict(
    reps=5, reflink_mib=64, cow_pages=1024, bw_file_mib=64, bw_4k_mib=16, bw_1m_mib=64,
    threads=[1, 2], append_n=300, append_nosync_n=4096, mmap_mib=64, mmap_passes=2, meta_n=2000,
    scale_n=5000, dev_mib=64, par_ms=1000, par_file_mib=16, par_rounds=4, seed=0, parts=list(PARTS),
)
if FULL:
    P.update(reps=5, reflink_mib=1024, cow_pages=16384, bw_file_mib=256, bw_4k_mib=64,
             bw_1m_mib=256, append_n=5000, append_nosync_n=65536, mmap_mib=256,
             meta_n=100000, scale_n=1000000, dev_mib=256, par_ms=3000, par_file_mib=64)
for k in list(P):  # FERROFS_T_BENCH_<KEY>=value overrides one parameter
    v = os.environ.get("FERROFS_T_BENCH_" + k.upper(), "").strip()
    if not v:
        continue
    words = [w for w in re.split(r"[,\s]+", v) if w]
    if k == "threads":  # "1 2" or "1,2"; each count once, ascending (1 first: the base of the scaling)
        P[k] = sorted(set(int(x) for x in words))
    elif k == "parts":
        bad = [w for w in words if w not in PARTS]
        if bad:
            sys.exit(f"bench: FERROFS_T_BENCH_PARTS: no part {' '.join(bad)} (parts: {' '.join(PARTS)})")
        P[k] = words
    else:
        P[k] = int(v)
if not P["seed"]:
    P["seed"] = int.from_bytes(os.urandom(4), "little") or 1
PAR = ["stat", "pread", "fault", "create"]  # the workloads of fsbench par

FS = {
    "ferrofs": dict(mkfs=["mkfs.ferrofs", "-f", "-q", DEV], type="ferrofs", opts="dax"),
    "xfs": dict(mkfs=["mkfs.xfs", "-f", "-q", "-m", "reflink=1", DEV], type="xfs", opts="dax"),
    # lazy init off: no ext4lazyinit thread zeroing inode tables and the
    # journal in the background while ext4 is being measured
    "ext4": dict(mkfs=["mkfs.ext4", "-F", "-q", "-E", "lazy_itable_init=0,lazy_journal_init=0", DEV],
                 type="ext4", opts="dax"),
}
NO_REFLINK = {"ext4"}  # EOPNOTSUPP from FICLONE there is "n/a", not an error

results = {name: {} for name in FS}
results["device"] = {}
log = []


def say(msg):
    print(f"bench: {msg}", flush=True)


def sh(*cmd, check=True):
    r = subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}: {r.stdout.strip()}")
    return r.stdout


def record(fs, rep, line):
    m = line["m"]
    slot = results[fs].setdefault(m, {"unit": line.get("unit", ""), "runs": []})
    if "na" in line:
        slot["runs"].append("n/a")
    elif "error" in line:
        e = line["error"]
        val = "n/a" if fs in NO_REFLINK and e in ("EOPNOTSUPP", "EXDEV", "EINVAL") else f"error: {e}"
        slot["runs"].append(val)
    elif "q" in line:
        slot["runs"].append(line["q"])
    else:
        slot["runs"].append(line["v"])


def fsbench(fs, rep, *args, timeout=1800):
    t0 = time.monotonic()
    try:
        r = subprocess.run([BIN, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=timeout)
        out, rc, errtxt = r.stdout, r.returncode, r.stderr.strip()
    except subprocess.TimeoutExpired as e:
        out, rc, errtxt = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""), -1, "timeout"
    got = 0
    for l in out.splitlines():
        if l.startswith("{"):
            record(fs, rep, json.loads(l))
            got += 1
    dt = time.monotonic() - t0
    note = f" rc={rc} {errtxt}" if rc else ""
    say(f"  {fs} rep{rep} {args[0]} {' '.join(map(str, args[1:]))[-60:]}: {got} figures, {dt:.1f}s{note}")
    if errtxt and rc == 0:
        print("    " + errtxt.replace("\n", "\n    "), flush=True)
    if rc and got == 0:
        results[fs].setdefault(f"{args[0]}_failed", {"unit": "", "runs": []})["runs"].append(
            f"error: exit {rc} {errtxt[-80:]}")
    log.append(dict(fs=fs, rep=rep, args=list(map(str, args)), rc=rc, seconds=round(dt, 3), stderr=errtxt[-500:]))


def rm(*paths):
    for p in paths:
        sh("rm", "-rf", p, check=False)
    os.sync()


def fresh_start():
    """the same starting point for every filesystem: dirty data written,
    page and slab caches dropped"""
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3")


def one_fs(fs, rep):
    cfg = FS[fs]
    fresh_start()
    t0 = time.monotonic()
    sh(*cfg["mkfs"])
    t1 = time.monotonic()
    sh("mount", "-t", cfg["type"], "-o", cfg["opts"], DEV, MNT)
    log.append(dict(fs=fs, rep=rep, args=["mkfs+mount"], rc=0, seconds=round(time.monotonic() - t0, 3)))
    say(f"  {fs} rep{rep} mkfs {t1 - t0:.1f}s, mount {time.monotonic() - t1:.1f}s")
    m = MNT + "/"
    dbg = f"/sys/kernel/debug/ferrofs/{os.path.basename(DEV)}"
    if fs != "ferrofs":
        dbg = "-"
    th = ",".join(map(str, P["threads"]))
    try:
        if "reflink" in P["parts"]:
            fsbench(fs, rep, "reflink", m + "rsrc", m + "rdst", P["reflink_mib"])
            rm(m + "rsrc", m + "rdst")
        if "cow" in P["parts"]:
            fsbench(fs, rep, "cow", m + "cow", P["cow_pages"], dbg)
            rm(m + "cow", m + "cow.pw", m + "cow.mm")
        if "bw" in P["parts"]:
            for t in P["threads"]:
                for bs, tot in ((4096, P["bw_4k_mib"]), (1 << 20, P["bw_1m_mib"])):
                    for pat in ("seq", "rand"):
                        for op in ("write", "read"):
                            fsbench(fs, rep, "bw", m + "bw", P["bw_file_mib"], bs, op, pat, tot, t)
            rm(m + "bw")
        if "append" in P["parts"]:
            fsbench(fs, rep, "append", m + "app", P["append_n"], 4096, "fdatasync")
            rm(m + "app")
            fsbench(fs, rep, "append", m + "app", P["append_nosync_n"], 4096, "none")
            rm(m + "app")
        if "mmap" in P["parts"]:
            fsbench(fs, rep, "mmapbw", m + "mm", P["mmap_mib"], P["mmap_passes"], dbg)
            rm(m + "mm")
        if "meta" in P["parts"]:
            fsbench(fs, rep, "meta", m + "meta", P["meta_n"], 1)  # create, stat, readdir
            fsbench(fs, rep, "remount", DEV, MNT, cfg["type"], cfg["opts"])  # with N files
            fsbench(fs, rep, "meta", m + "meta", P["meta_n"], 2)  # rename, unlink
            rm(m + "meta")
        if "scale" in P["parts"]:
            extra = [dbg + "/rmap"] if dbg != "-" else ["-"]
            fsbench(fs, rep, "scale", m + "ssrc", m + "sdst", P["scale_n"], *extra)
            rm(m + "ssrc", m + "sdst")
        if "par" in P["parts"]:
            # each workload in a directory of its own, thread counts in THREADS order
            for w in PAR:
                fsbench(fs, rep, "par", w, m + "par", P["par_ms"], th, P["par_file_mib"], P["par_rounds"])
                rm(m + "par")
    finally:
        sh("umount", MNT, check=False)
    say(f"{fs} rep{rep} done in {time.monotonic() - t0:.0f}s")


def main():
    t_start = time.monotonic()
    sh("gcc", "-O2", "-Wall", "-pthread", "-o", BIN, os.path.join(SRC, "bench/fsbench.c"))
    sh("insmod", os.environ["FERROFS_KO"])
    say(f"{'full' if FULL else 'quick'} mode on kernel {platform.release()}, plan {json.dumps(P)}")
    if max(P["threads"]) > (os.cpu_count() or 1):
        say(f"THREADS {P['threads']} on {os.cpu_count()} vCPUs: threads share vCPUs, so scaling is capped")
    say(f"seed {P['seed']} (FERROFS_T_BENCH_SEED={P['seed']}, or SEED={P['seed']} for make bench, replays this order)")
    rng = random.Random(P["seed"])
    order = []
    for rep in range(1, P["reps"] + 1):
        items = ["device"] if "device" in P["parts"] else []
        items += [fs for fs in FS if not ONLY or fs in ONLY]
        rng.shuffle(items)
        order.append(items)
        say(f"rep{rep} order: {' '.join(items)}")
        for fs in items:
            if fs == "device":
                fresh_start()
                fsbench("device", rep, "devbw", DEV, P["dev_mib"])
                continue
            try:
                one_fs(fs, rep)
            except Exception as e:  # mkfs or mount failed: say so, carry on
                say(f"{fs} rep{rep}: {e}")
                results[fs].setdefault("setup_failed", {"unit": "", "runs": []})["runs"].append(f"error: {e}"[:200])
    cpu = ""
    for l in open("/proc/cpuinfo"):
        if l.startswith("model name"):
            cpu = l.split(":", 1)[1].strip()
            break
    out = dict(
        mode="full" if FULL else "quick", params=P, order=order, results=results, log=log,
        guest=dict(kernel=platform.release(), cpus=os.cpu_count(), cpu_model=cpu,
                   mem_kib=int(open("/proc/meminfo").readline().split()[1]),
                   pmem_bytes=int(open(f"/sys/block/{os.path.basename(DEV)}/size").read()) * 512),
        seconds=round(time.monotonic() - t_start, 1),
    )
    path = os.path.join(os.environ["FERROFS_RUNDIR"], f"bench-{os.environ.get('FERROFS_T_BENCH_TAG', 'x')}.json")
    with open(path, "w") as f:
        json.dump(out, f)
    say(f"finished in {out['seconds']}s; raw results in {path}")


if __name__ == "__main__":
    sys.exit(main())
