#!/usr/bin/env python3
"""Summarise an xfstests run directory of scripts/xfstests (all its chunks).

  report.py RUN_DIR TREE GROUPS FSTYPE...

Outcomes per test come from the run's state (tests/xfstests/runstate.py):
xfstests' xunit report of each test, its console line when the report is
missing, "crashed" for a test the VM never came back from, "expunged" for a
test the host left out. Prints, per type, a table of passed / failed / not
run / crashed / expunged per group, the failures, the reasons tests did not
run, then a side by side list of tests whose outcome differs between the
types. Writes the same as RUN_DIR/results/summary.txt. Exit status 1 if a
ferrofs test failed or crashed.
"""
import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runstate import groups_of_tests, outcomes, test_key  # noqa: E402

run, tree, groups_arg = sys.argv[1], sys.argv[2], sys.argv[3]
fstypes = sys.argv[4:]
lines_out = []


def out(s=""):
    print(s)
    lines_out.append(s)


def parse(fs):
    """test -> (status, message)."""
    return {t: (r["outcome"], r["detail"]) for t, r in outcomes(run, fs).items()}


def main():
    tg = groups_of_tests(tree)
    wanted = [g.split("/")[-1] for g in groups_arg.split()] or ["all"]
    all_res = {fs: parse(fs) for fs in fstypes}
    rc = 0
    for fs in fstypes:
        res = all_res[fs]
        out(f"\n== xfstests on {fs} (-o dax): {len(res)} tests ==")
        out(f"{'group':<12}{'passed':>8}{'failed':>8}{'not run':>9}{'crashed':>9}{'expunged':>10}")
        rows = wanted + (["all"] if wanted != ["all"] else [])
        for grp in rows:
            c = collections.Counter(st for t, (st, _) in res.items() if grp == "all" or grp in tg.get(t, ()))
            out(f"{grp:<12}{c['pass']:>8}{c['fail']:>8}{c['notrun']:>9}{c['crashed']:>9}{c['expunged']:>10}")
        fails = sorted((t for t, (st, _) in res.items() if st in ("fail", "crashed")), key=test_key)
        if fails:
            out(f"failed or crashed ({len(fails)}):")
            for t in fails:
                out(f"  {t}  {res[t][0]}: {res[t][1][:110]}")
            if fs == "ferrofs":
                rc = 1
        reasons = collections.Counter(msg for st, msg in res.values() if st == "notrun")
        if reasons:
            out("not run, by reason:")
            for msg, n in reasons.most_common():
                out(f"  {n:4}  {msg[:110]}")
    if len(fstypes) > 1:
        base = fstypes[0]
        out(f"\n== side by side: tests whose outcome differs from {base} ==")
        names = sorted(set().union(*(r.keys() for r in all_res.values())), key=test_key)
        hdr = f"{'test':<16}" + "".join(f"{fs:>10}" for fs in fstypes)
        diff = [t for t in names if len({all_res[fs].get(t, ('-',))[0] for fs in fstypes}) > 1]
        out(hdr)
        for t in diff:
            out(f"{t:<16}" + "".join(f"{all_res[fs].get(t, ('-',))[0]:>10}" for fs in fstypes))
        if not diff:
            out("  (none)")
        worse = [t for t in names if all_res[base].get(t, ("-",))[0] in ("fail", "crashed")
                 and any(all_res[fs].get(t, ("-",))[0] == "pass" for fs in fstypes[1:])]
        out(f"{base} fails where a peer passes: {len(worse)}" + (": " + " ".join(worse) if worse else ""))
    with open(os.path.join(run, "results", "summary.txt"), "w") as f:
        f.write("\n".join(lines_out) + "\n")
    return rc


sys.exit(main())
