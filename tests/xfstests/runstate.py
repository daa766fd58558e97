#!/usr/bin/env python3
"""The state of an xfstests run directory, shared by scripts/xfstests,
report.py and ledger.py.

A run directory (out/xfstests/run-STAMP) is carried across chunks, VM boots,
days and machines. Its layout:

  chunks/NNN/meta         one "key<TAB>value" a line: started, xfstests and
                          ferrofs commits, smp, budget, max, selection
  chunks/NNN/list-FSTYP   the tests this chunk was to run, in order
  chunks/NNN/console.log, dmesg, status   that chunk's VM output (vm-run's)
  results/FSTYP/          xfstests' RESULT_BASE (.out.bad, .full, .dmesg)
  results/FSTYP/expunged  "test<TAB>reason" for tests the host left out
  results/FSTYP/state/generic/001.start  "EPOCH CHUNK": written by the guest
                          before the test starts
  results/FSTYP/state/generic/001.end    "EPOCH EXIT": after the test and
                          ./check's checks of it (EXIT: 0, or ./check's
                          exit status for a chunk's last test; runs before
                          guest-mark had one ./check per test)
  results/FSTYP/state/generic/001.log    ./check's console output for the
                          test (header, its line, summary), whose line for
                          the test gives the outcome
  results/FSTYP/state/generic/001.xml    an xunit report, used if present
                          (runs before guest-check dropped -R xunit)

A .start without an .end is a test the VM never came back from (guest panic,
hang until the VM timeout, host killed or lost): outcome "crashed". The guest
skips every test that has a .start, so the next chunk goes on after it.

Command line (for scripts/xfstests):
  runstate.py select TREE "GROUPS" "TESTS" FSTYP EXPUNGE_FILE RUN CHUNK [retry]
      writes chunks/CHUNK/list-FSTYP (tests still to run, numeric order) and
      results/FSTYP/expunged; prints "total pending expunged". CHUNK "-":
      only prints the counts. "retry": crashed tests run again (their
      .start is kept as TEST.crashed-CHUNK, where the guest does not look).
"""
import collections
import os
import re
import sys
import xml.etree.ElementTree as ET

OUTCOMES = ("pass", "fail", "notrun", "crashed", "expunged")


def groups_of_tests(tree):
    """test name -> set of groups, from the built tree's group.list files."""
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


def test_key(t):
    d, _, n = t.partition("/")
    return (d, int(n) if n.isdigit() else 0, n)


def select(tree, groups, tests):
    """The tests ./check would run for GROUPS (generic groups unless written
    DIR/GROUP) or TESTS (names, winning when given), in numeric order."""
    if tests.split():
        return sorted(set(tests.split()), key=test_key)
    tg = groups_of_tests(tree)
    want = set()
    for grp in groups.split():
        d, _, name = grp.rpartition("/")
        d = d or "generic"
        want.update(t for t, gs in tg.items() if t.startswith(d + "/") and name in gs)
    return sorted(want, key=test_key)


def expunge_list(path):
    """test -> reason, from an expunge file ("test  # reason" lines)."""
    out = {}
    if path and os.path.exists(path):
        for line in open(path):
            body, _, reason = line.partition("#")
            body = body.strip()
            if body:
                out[body.split()[0]] = reason.strip()
    return out


def expunged(base):
    """test -> reason, from results/FSTYP/expunged ("test<TAB>reason")."""
    out = {}
    p = os.path.join(base, "expunged")
    if os.path.exists(p):
        for line in open(p):
            t, _, reason = line.rstrip("\n").partition("\t")
            if t:
                out[t] = reason
    return out


def chunk_meta(run):
    """chunk id -> {key: value}."""
    metas = {}
    cdir = os.path.join(run, "chunks")
    for c in sorted(os.listdir(cdir)) if os.path.isdir(cdir) else []:
        m = {}
        p = os.path.join(cdir, c, "meta")
        if os.path.exists(p):
            for line in open(p):
                k, _, v = line.rstrip("\n").partition("\t")
                m[k] = v
        metas[c] = m
    return metas


def first_diff_line(diff):
    """The first line a test printed that its golden output lacks (or the
    first missing one), from a unified diff."""
    for line in diff.splitlines():
        if line.startswith(("---", "+++", "@@")):
            continue
        if line.startswith(("+", "-")) and line[1:].strip():
            return line.strip()
    return ""


def _oneline(s, n=160):
    return " ".join(s.split())[:n]


def crash_cause(run, chunk):
    """The first kernel complaint in a chunk's console log, if any."""
    p = os.path.join(run, "chunks", chunk or "", "console.log")
    if not chunk or not os.path.exists(p):
        return ""
    bad = re.compile(r"Oops|BUG:|Kernel panic|general protection fault|kernel BUG|"
                     r"blocked for more than|soft lockup|panicked at|WARNING:")
    for line in open(p, errors="replace"):
        if bad.search(line):
            return "guest: " + _oneline(re.sub(r"^\[ *[0-9.]+\] ", "", line))
    return ""


def outcomes(run, fs):
    """test -> dict(outcome, seconds, detail, chunk, ended) for one FSTYP of a
    run. `ended` is the epoch the result came to be: the test's end, the
    start of a test that crashed, and for an expunged test the start of the
    run's last chunk (whose selection applied the expunge list); 0 if
    unknown. The ledger keeps the newest result of a test by it."""
    res = {}
    base = os.path.join(run, "results", fs)
    metas = chunk_meta(run)
    last_start = max([int(m.get("started_epoch", 0) or 0) for m in metas.values()] or [0])
    for t, reason in expunged(base).items():
        res[t] = dict(outcome="expunged", seconds="", detail=reason, chunk="", ended=last_start)
    sdir = os.path.join(base, "state")
    if not os.path.isdir(sdir):
        return res
    for d in sorted(os.listdir(sdir)):
        for f in os.listdir(os.path.join(sdir, d)):
            if not f.endswith(".start"):
                continue
            t = f"{d}/{f[:-6]}"
            stem = os.path.join(sdir, d, f[:-6])
            start = open(stem + ".start").read().split()
            t0, chunk = (int(start[0]) if start else 0), (start[1] if len(start) > 1 else "")
            if not os.path.exists(stem + ".end"):
                cause = crash_cause(run, chunk) or "the VM never came back from this test (guest crash, VM timeout or host stopped)"
                res[t] = dict(outcome="crashed", seconds="", detail=cause, chunk=chunk, ended=t0)
                continue
            end = open(stem + ".end").read().split()
            wall = int(end[0]) - t0 if end else 0
            r = classify(stem, t)
            r.setdefault("seconds", str(wall))
            r["chunk"] = chunk
            r["ended"] = int(end[0]) if end else t0
            res[t] = r
    return res


def classify(stem, t):
    """One finished test's outcome from its xunit report, else its console."""
    xml = stem + ".xml"
    if os.path.exists(xml):
        try:
            root = ET.parse(xml).getroot()
        except ET.ParseError:
            root = None
        for tc in root.iter("testcase") if root is not None else []:
            if tc.get("name") != t:
                continue
            secs = tc.get("time") or ""
            sk, fl = tc.find("skipped"), tc.find("failure")
            if fl is None:
                fl = tc.find("error")
            if sk is not None:
                return dict(outcome="notrun", seconds=secs, detail=_oneline(sk.get("message", "")))
            if fl is not None:
                msg = fl.get("message", "")
                err = tc.find("system-err")
                first = first_diff_line(err.text or "") if err is not None else ""
                if "output mismatch" in msg and first:
                    msg = f"output mismatch: {first}"
                return dict(outcome="fail", seconds=secs, detail=_oneline(msg))
            return dict(outcome="pass", seconds=secs, detail="")
    # no xunit report (guest-check does not ask for one: building it costs
    # about a hundred fork/execs per test, half a minute under TCG): the
    # console line ("generic/001 12s", "generic/001 11s ...  12s",
    # "[not run] why", "- output mismatch (see ...)" followed by the indented
    # diff, "[failed, exit status 1]", "_check_dmesg: something found")
    log = stem + ".log"
    text = open(log, errors="replace").read() if os.path.exists(log) else ""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith(t + " "):
            continue
        rest = line[len(t):].strip()
        secs = re.findall(r"(\d+)s$", rest)
        if "[expunged]" in rest:
            return dict(outcome="expunged", detail="")
        if "[not run]" in rest:
            return dict(outcome="notrun", detail=_oneline(rest.split("[not run]", 1)[1]))
        if secs and not re.search(r"mismatch|\[failed|_check_|something found", rest):
            return dict(outcome="pass", seconds=secs[0], detail="")
        if "output mismatch" in rest:
            diff = "\n".join(l.strip() for l in lines[i + 1:] if l.startswith("    "))
            first = first_diff_line(diff)
            if first:
                return dict(outcome="fail", detail=_oneline("output mismatch: " + first))
        return dict(outcome="fail", detail=_oneline(re.sub(r"^\d+s \.\.\. *", "", rest)))
    last = [l for l in lines if l.strip()][-1:]
    return dict(outcome="fail", detail=_oneline("no result from ./check: " + (last[0] if last else "no output")))


def cmd_select(tree, groups, tests, fs, expunge_file, run, chunk, retry=""):
    sel = select(tree, groups, tests)
    exp = expunge_list(expunge_file)
    base = os.path.join(run, "results", fs)
    sdir = os.path.join(base, "state")
    if retry == "retry" and chunk != "-":
        for t in sel:
            stem = os.path.join(sdir, t)
            if os.path.exists(stem + ".start") and not os.path.exists(stem + ".end"):
                start = open(stem + ".start").read().split()
                os.rename(stem + ".start", f"{stem}.crashed-{start[1] if len(start) > 1 else 'x'}")
    pending = [t for t in sel if t not in exp and not os.path.exists(os.path.join(sdir, t + ".start"))]
    print(len(sel), len(pending), sum(1 for t in sel if t in exp))
    if chunk == "-":
        return
    os.makedirs(base, exist_ok=True)
    old = expunged(base)
    old.update({t: exp[t] for t in sel if t in exp})
    with open(os.path.join(base, "expunged"), "w") as f:
        for t in sorted(old, key=test_key):
            f.write(f"{t}\t{old[t]}\n")
    with open(os.path.join(run, "chunks", chunk, f"list-{fs}"), "w") as f:
        f.writelines(t + "\n" for t in pending)


if __name__ == "__main__":
    if len(sys.argv) in (9, 10) and sys.argv[1] == "select":
        cmd_select(*sys.argv[2:])
    else:
        sys.exit(__doc__)
