#!/usr/bin/env python3
"""Summarise an xfstests run of scripts/xfstests.

  report.py RESULTS_DIR TREE GROUPS FSTYPE...

RESULTS_DIR holds, per filesystem type, FSTYPE/result.xml (xfstests' xunit
report, written when ./check ends) and check-FSTYPE.log (its console output,
written as it goes: used when the xunit report is missing because the run was
cut short). Prints, per type, a table of passed / failed / not run /
expunged per group, the failures, the reasons tests did not run, then a side
by side list of tests whose outcome differs between the types. Writes the
same as RESULTS_DIR/summary.txt. Exit status 1 if a ferrofs test failed.
"""
import collections
import os
import re
import sys
import xml.etree.ElementTree as ET

results, tree, groups_arg = sys.argv[1], sys.argv[2], sys.argv[3]
fstypes = sys.argv[4:]
lines_out = []


def out(s=""):
    print(s)
    lines_out.append(s)


def groups_of_tests():
    g = collections.defaultdict(set)
    tdir = os.path.join(tree, "tests")
    for d in sorted(os.listdir(tdir)):
        gl = os.path.join(tdir, d, "group.list")
        if not os.path.exists(gl):
            continue
        for line in open(gl):
            line = line.split("#")[0].split()
            if line:
                g[f"{d}/{line[0]}"].update(line[1:])
    return g


LOG_RE = re.compile(r"^(\w+/\d+)\s+(.*)$")


def parse(fs):
    """test -> (status, message); status in pass/fail/notrun/expunged."""
    res = {}
    log = os.path.join(results, f"check-{fs}.log")
    if os.path.exists(log):
        for line in open(log, errors="replace"):
            m = LOG_RE.match(line.rstrip())
            if not m:
                continue
            t, rest = m.groups()
            if "[expunged]" in rest:
                res[t] = ("expunged", "")
            elif "[not run]" in rest:
                res[t] = ("notrun", rest.split("[not run]", 1)[1].strip())
            elif "[failed" in rest or "output mismatch" in rest or "_check_" in rest:
                res[t] = ("fail", rest.strip())
            elif re.search(r"\d+s$", rest.strip()):
                res[t] = ("pass", "")
    xml = os.path.join(results, fs, "result.xml")
    if os.path.exists(xml):
        try:
            root = ET.parse(xml).getroot()
        except ET.ParseError as e:
            out(f"  ({fs}: unreadable xunit report: {e}; using the console log)")
            root = None
        for tc in root.iter("testcase") if root is not None else []:
            name = tc.get("name")
            if tc.find("skipped") is not None:
                res[name] = ("notrun", tc.find("skipped").get("message", ""))
            elif tc.find("failure") is not None or tc.find("error") is not None:
                f = tc.find("failure") if tc.find("failure") is not None else tc.find("error")
                res[name] = ("fail", f.get("message", ""))
            else:
                res[name] = ("pass", "")
    finished = os.path.exists(log) and any(l.startswith("Ran:") or l.startswith("Passed all") for l in open(log, errors="replace"))
    if res and not finished:
        last = [l for l in open(log, errors="replace") if LOG_RE.match(l)][-1:] if os.path.exists(log) else []
        cut = f"; it stopped in {last[0].split()[0]}" if last and last[0].split()[0] not in res else ""
        out(f"  ({fs}: ./check did not finish{cut}: counted what completed)")
    return res


def main():
    tg = groups_of_tests()
    wanted = [g.split("/")[-1] for g in groups_arg.split()] or ["all"]
    all_res = {fs: parse(fs) for fs in fstypes}
    rc = 0
    for fs in fstypes:
        res = all_res[fs]
        out(f"\n== xfstests on {fs} (-o dax): {len(res)} tests ==")
        out(f"{'group':<12}{'passed':>8}{'failed':>8}{'not run':>9}{'expunged':>10}")
        rows = wanted + (["all"] if wanted != ["all"] else [])
        for grp in rows:
            c = collections.Counter(st for t, (st, _) in res.items() if grp == "all" or grp in tg.get(t, ()))
            out(f"{grp:<12}{c['pass']:>8}{c['fail']:>8}{c['notrun']:>9}{c['expunged']:>10}")
        fails = sorted(t for t, (st, _) in res.items() if st == "fail")
        if fails:
            out(f"failed ({len(fails)}):")
            for t in fails:
                out(f"  {t}  {res[t][1][:110]}")
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
        names = sorted(set().union(*(r.keys() for r in all_res.values())))
        hdr = f"{'test':<16}" + "".join(f"{fs:>10}" for fs in fstypes)
        diff = [t for t in names if len({all_res[fs].get(t, ('-',))[0] for fs in fstypes}) > 1]
        out(hdr)
        for t in diff:
            out(f"{t:<16}" + "".join(f"{all_res[fs].get(t, ('-',))[0]:>10}" for fs in fstypes))
        if not diff:
            out("  (none)")
        worse = [t for t in names if all_res[base].get(t, ("-",))[0] == "fail"
                 and any(all_res[fs].get(t, ("-",))[0] == "pass" for fs in fstypes[1:])]
        out(f"{base} fails where a peer passes: {len(worse)}" + (": " + " ".join(worse) if worse else ""))
    with open(os.path.join(results, "summary.txt"), "w") as f:
        f.write("\n".join(lines_out) + "\n")
    return rc


sys.exit(main())
