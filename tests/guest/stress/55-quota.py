#!/usr/bin/env python3
"""Quota accounting under concurrency (Documentation/quota-plan.md, step 4):
on one `-o dax,usrquota,grpquota` mount with quota on, at the same time,
- fsstress.c as user 6000 (group 6000) under a small block and inode limit,
  so writes, faults, fallocate, reflinks and creates keep hitting EDQUOT (a
  short write, EDQUOT, or SIGBUS for a store fault) and giving space back,
- fsstress.c as user 7000 whose group 7000 has a block limit,
- fsstress.c as root (no limit applies),
- a thread that chowns and chgrps root's files between IDs 8000 and 8001 and
  back while they are written (dquot_transfer racing the charges),
- and the caches dropped every 3 s (evict settles an inode's charge).
Then the usage the kernel counted must be exactly what a quotacheck
recount of the same tree finds, for every user and group; no inode may be
logged as charged differently from what it maps; the limits and usage must
survive an unmount (quota files written through the engine); fsck.ferrofs
-n is clean; and the kernel log has no lockdep/KASAN/WARN report.

Knobs (short defaults; `make stress` sets FERROFS_T_STRESS_LONG=1):
FERROFS_T_QUOTA_PROCS (fsstress processes per owner, 2; 3 long),
FERROFS_T_QUOTA_SECONDS (60; 240 long), FERROFS_T_QUOTA_SEED (1).

Run alone: scripts/vm-run --pmem 1 --timeout 1200 -- sh -c
'insmod $FERROFS_KO && tests/guest/stress/55-quota.py'
"""
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
from fsutil import parse_repquota  # noqa: E402

LIMITED, GROUP_LIMITED, CHOWN_IDS = 6000, 7000, (8000, 8001)


def knob(name, short, long=None):
    return S.knob(name, short, long, prefix="FERROFS_T_QUOTA_")


def repquota(kind):
    """{id: (KiB used, soft, hard, inodes used, soft, hard)} of quota type
    KIND ('u' or 'g'), every ID the quota file has."""
    return parse_repquota(S.sh(f"repquota -{kind} -n -v {S.MNT}").stdout)


def usage():
    """{kind: {id: (KiB used, inodes used)}}, IDs without usage left out (a
    recount drops them)."""
    return {k: {q: (r[0], r[3]) for q, r in repquota(k).items() if r[0] or r[3]} for k in "ug"}


def fsstress(exe, top, procs, secs, seed, uid, gid):
    """Starts fsstress in TOP as uid:gid (EDQUOT expected): the Popen."""
    os.mkdir(top)
    os.chown(top, uid, gid)

    def drop():
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    return subprocess.Popen([exe, top, str(procs), str(secs), str(seed)], preexec_fn=drop,
                            env=dict(os.environ, FSSTRESS_QUOTA="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def chowner(top, stop, counts):
    """Moves root's files between owners while fsstress writes them."""
    rng = random.Random(7)
    while not stop.is_set():
        for root, dirs, files in os.walk(top):
            for n in files + dirs:
                try:
                    os.lchown(os.path.join(root, n), rng.choice(CHOWN_IDS + (0,)), rng.choice(CHOWN_IDS + (0,)))
                    counts["chown"] += 1
                except FileNotFoundError:
                    pass
        stop.wait(0.2)


def main():
    procs = knob("PROCS", 2, 3)
    secs = knob("SECONDS", 60, 240)
    seed = knob("SEED", 1)
    exe = S.build_c("fsstress")
    k = S.Kmsg()
    S.sh(f"mkfs.ferrofs -f -q {S.DEV}")
    S.sh(f"mount -t ferrofs -o dax,usrquota,grpquota {S.DEV} {S.MNT}")
    # A directory is charged a block per 13 entries, from its first
    # (engine::dir_blocks), and quotacheck -c adds its two files to the
    # root after it has counted the root empty: the root's first block
    # would be missing from the usage it records (until the next mount's
    # recount). A first entry before it makes the count final.
    os.mkdir(f"{S.MNT}/lost+found")
    S.sh(f"quotacheck -cug {S.MNT}")
    S.sh(f"quotaon -ug {S.MNT}")
    # user 6000: 3 MiB and 150 inodes; group 7000: 4 MiB (in KiB)
    S.sh(f"setquota -u {LIMITED} 2048 3072 100 150 {S.MNT}")
    S.sh(f"setquota -g {GROUP_LIMITED} 3072 4096 0 0 {S.MNT}")
    t0 = time.time()
    S.mark("55-quota: fsstress as three owners with quota on")
    stop_drop = S.cache_dropper()
    runs = [fsstress(exe, f"{S.MNT}/u{uid}", procs, secs, seed + i, uid, gid)
            for i, (uid, gid) in enumerate(((LIMITED, LIMITED), (GROUP_LIMITED, GROUP_LIMITED), (0, 0)))]
    stop, counts = threading.Event(), {"chown": 0}
    th = threading.Thread(target=chowner, args=(f"{S.MNT}/u0", stop, counts), daemon=True)
    th.start()
    ops = edquot = unexpected = 0
    for p in runs:
        out, _ = p.communicate(timeout=secs + 300)
        print(out, end="")
        m = re.search(r"fsstress: (\d+) ops \(.* (\d+) EDQUOT, .* (\d+) unexpected errors", out)
        if not m or p.returncode not in (0, 1):
            raise AssertionError(f"fsstress exited {p.returncode} without its summary")
        ops += int(m.group(1))
        edquot += int(m.group(2))
        unexpected += int(m.group(3))
    stop.set()
    th.join()
    stop_drop()
    log = k.new()
    k.check("fsstress with quota on")
    assert unexpected == 0, f"{unexpected} unexpected errors"
    assert edquot > 0, "no operation hit a quota limit: the limits were not enforced"

    os.chdir("/")
    S.sh("sync")
    counted = usage()
    assert counted["u"].get(LIMITED, (0, 0))[0] <= 3072, counted["u"].get(LIMITED)
    assert counted["u"].get(LIMITED, (0, 0))[1] <= 150, counted["u"].get(LIMITED)
    assert counted["g"].get(GROUP_LIMITED, (0, 0))[0] <= 4096, counted["g"].get(GROUP_LIMITED)
    # the recount: quotacheck refuses to run while quota is on
    S.sh(f"quotaoff -ug {S.MNT}")
    S.sh(f"quotacheck -ug {S.MNT}")
    S.sh(f"quotaon -ug {S.MNT}")
    recount = usage()
    assert recount == counted, f"the kernel counted {counted}, quotacheck finds {recount}"
    bad = [l for l in log + k.new() if "is charged" in l]
    assert not bad, bad

    # limits and usage reach the media and come back
    S.sh(f"umount {S.MNT}")
    S.fsck_clean()
    S.sh(f"mount -t ferrofs -o dax,usrquota,grpquota {S.DEV} {S.MNT}")
    S.sh(f"quotaon -ug {S.MNT}")
    assert usage() == counted, f"after a remount: {usage()}, before: {counted}"
    lim = repquota("u").get(LIMITED)
    assert lim and lim[1:3] == (2048, 3072) and lim[4:6] == (100, 150), lim
    S.sh(f"quotaoff -ug {S.MNT}")
    S.sh(f"umount {S.MNT}")
    S.fsck_clean()
    k.check("quota stress")
    ids = len(counted["u"]) + len(counted["g"])
    print(f"quota: {ops} fsstress ops as 3 owners, {edquot} EDQUOT, {counts['chown']} chowns, "
          f"usage of {ids} IDs equal to a quotacheck recount, {time.time() - t0:.0f}s")
    S.summary("quota", ops=ops, edquot=edquot, chowns=counts["chown"], ids=ids)


if __name__ == "__main__":
    main()
