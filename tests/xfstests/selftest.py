#!/usr/bin/env python3
"""Host-side test of the xfstests harness bookkeeping, no VM and no xfstests
needed: python3 tests/xfstests/selftest.py

Builds a run directory by hand the way guest-check leaves it (a passed, a
failed, a not-run and a crashed test, an expunged one), then checks what
runstate.py makes of it (outcomes, the first diff line of a failure, the
selection a resumed chunk gets, re-running crashed tests) and what
ledger.py does with it (rows, a re-run replacing a row, a render that is
idempotent and lists the test ferrofs fails where XFS passes; a test of
the extra set going to extra.tsv and to its own rendered block). Also
runs guest-mark, the guest's per-test hook, under a stand-in ./check: each
test's state and outcome, and the count and time bounds.
"""
import calendar
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import runstate  # noqa: E402
from ledger import BEGIN, END, EXTRA_BEGIN, EXTRA_END  # noqa: E402

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


XML_PASS = '<testsuite><testcase classname="xfstests.global" name="{t}" time="{s}"></testcase></testsuite>'
XML_FAIL = ('<testsuite><testcase classname="xfstests.global" name="{t}" time="{s}">'
            '<failure message="- output mismatch (see x)" type="TestFail" />'
            '<system-err><![CDATA[\n--- a\n+++ b\n@@ -1,2 +1,3 @@\n QA output created by 002\n'
            '+wrong size 4096\n done\n]]></system-err></testcase></testsuite>')
XML_NOTRUN = ('<testsuite><testcase classname="xfstests.global" name="{t}" time="{s}">'
              '<skipped message="xfs_io falloc -k failed (old kernel/wrong fs?)" /></testcase></testsuite>')


def fake_test(run, fs, t, chunk, xml, secs, crashed=False):
    """A test's state as guest-mark leaves it, started a minute after its
    chunk (whose meta must be written first)."""
    meta = dict(line.rstrip("\n").split("\t", 1) for line in open(os.path.join(run, "chunks", chunk, "meta")))
    t0 = calendar.timegm(time.strptime(meta["started"], "%Y-%m-%dT%H:%M:%SZ")) + 60
    stem = os.path.join(run, "results", fs, "state", t)
    write(stem + ".start", f"{t0} {chunk}\n")
    if crashed:
        return
    write(stem + ".end", f"{t0 + secs + 5} 0\n")
    write(stem + ".xml", xml.format(t=t, s=secs))


HDR = "FSTYP         -- ferrofs\nMKFS_OPTIONS  -- -f /dev/pmem1\n\n"
LOGS = {
    "generic/010": (HDR + "generic/010 12s ...  14s\nRan: generic/010\nPassed all 1 tests\n", "pass", "14"),
    "generic/011": (HDR + "generic/011       [not run] xfs_io falloc -k failed (old kernel/wrong fs?)\n"
                    "Ran: generic/011\nNot run: generic/011\nPassed all 1 tests\n",
                    "notrun", "xfs_io falloc -k failed (old kernel/wrong fs?)"),
    "generic/012": (HDR + "generic/012       - output mismatch (see /r/generic/012.out.bad)\n"
                    "    --- tests/generic/012.out\t2026-11-30 14:00:00\n"
                    "    +++ /r/generic/012.out.bad\t2026-11-30 14:01:00\n"
                    "    @@ -1,3 +1,3 @@\n     QA output created by 012\n"
                    "    -size 8192\n    +size 4096\n    ...\n"
                    "Ran: generic/012\nFailures: generic/012\nFailed 1 of 1 tests\n",
                    "fail", "output mismatch: -size 8192"),
    "generic/013": (HDR + "generic/013 31s ...  [failed, exit status 1]- output mismatch (see x)\n"
                    "Ran: generic/013\nFailures: generic/013\n", "fail", None),
    "generic/014": (HDR + "generic/014 20s ... _check_dmesg: something found (see /r/generic/014.dmesg)\n",
                    "fail", "_check_dmesg: something found (see /r/generic/014.dmesg)"),
}


# A stand-in for xfstests' ./check: the console header, then per test its
# name, the LOGGER_PROG call, its outcome; a summary; TERM as ./check traps it.
FAKE_CHECK = r"""#!/bin/bash
trap 'echo "Interrupted!"; exit 1' 15
printf 'FSTYP         -- ferrofs\nPLATFORM      -- Linux\n\n'
for t in "$@"; do
  printf "%-20s" "$t"
  $LOGGER_PROG "run xfstest $t"
  case $t in
    */002) printf -- "- output mismatch (see x)\n    --- a\n    +++ b\n    @@ -1 +1 @@\n    -good\n    +bad\n";;
    */003) echo "[not run] no reason";;
    *) echo "12s";;
  esac
done
echo "Ran: $*"; echo "Failures: generic/002"
exit 1
"""


def mark_run(tmp, name, tests, cur, **env):
    """Runs the fake ./check over `tests` with guest-mark as its hook, as
    guest-check does; returns (state dir, progress lines, stop reason)."""
    d = os.path.join(tmp, name)
    os.makedirs(os.path.join(d, "state"))
    fake = os.path.join(d, "check")
    write(fake, FAKE_CHECK)
    os.chmod(fake, 0o755)
    mark = os.path.join(here, "guest-mark")
    e = dict(os.environ, XFST_STATE=os.path.join(d, "state"), XFST_FS="ferrofs", XFST_LOG=os.path.join(d, "check.log"),
             XFST_CUR=os.path.join(d, "cur"), XFST_DEADLINE="0", XFST_MAX="0",
             FERROFS_T_XFST_CHUNK="007", LOGGER_PROG=mark)
    e.update(env)
    write(e["XFST_CUR"], cur)
    # fd 3 is where progress goes (guest-check's console), as in the guest
    prog_path = os.path.join(d, "progress")
    on3 = ["sh", "-c", 'exec 3>>"$XFST_PROGRESS"; exec "$@"', "sh"]
    e["XFST_PROGRESS"] = prog_path
    with open(e["XFST_LOG"], "w") as log:
        rc = subprocess.run(on3 + [fake] + tests, stdout=log, stderr=subprocess.STDOUT, env=e).returncode
    subprocess.run(on3 + [mark, "close", str(rc)], env=e, check=True)
    prog = open(prog_path).read().splitlines()
    log_text = open(e["XFST_LOG"]).read()
    check("xfstests:" not in log_text, "progress lines stay out of ./check's output")
    stop = open(e["XFST_CUR"] + ".stop").read().strip() if os.path.exists(e["XFST_CUR"] + ".stop") else ""
    return os.path.join(d, "state"), prog, stop


def check_guest_mark(tmp):
    """guest-mark: one ./check over a list still leaves per-test state."""
    tests = ["generic/001", "generic/002", "generic/003", "generic/004"]
    sdir, prog, stop = mark_run(tmp, "mark1", tests, "- 5 0\n")
    got = {t: runstate.classify(os.path.join(sdir, t), t) for t in tests}
    check([got[t]["outcome"] for t in tests] == ["pass", "fail", "notrun", "pass"],
          f"guest-mark: each test's own .log gives its outcome: {got}")
    check(got["generic/002"]["detail"] == "output mismatch: -good", f"and its own diff: {got['generic/002']}")
    check(all(os.path.exists(os.path.join(sdir, t + x)) for t in tests for x in (".start", ".end")),
          "guest-mark: every test has a .start and an .end")
    check(open(os.path.join(sdir, "generic/004.end")).read().split()[1] == "1",
          "the last test's .end has ./check's exit status")
    check(len(prog) == 4 and "[test 6 of this chunk" in prog[0] and "[test 9 of this chunk" in prog[3],
          f"one progress line per test, counted on from earlier FSTYPs: {prog}")
    check(not stop, "no stop reason when the list ran out")
    # the count bound: the third test is not started (the next chunk runs it)
    sdir, prog, stop = mark_run(tmp, "mark2", tests, "- 0 0\n", XFST_MAX="2")
    started = sorted(f for f in os.listdir(os.path.join(sdir, "generic")) if f.endswith(".start"))
    check(started == ["001.start", "002.start"], f"count bound 2: two tests started: {started}")
    check(stop.startswith("count bound"), f"and the chunk says why it stopped: {stop!r}")
    # a spent budget: nothing starts at all
    sdir, prog, stop = mark_run(tmp, "mark3", tests, "- 0 0\n", XFST_DEADLINE="1")
    check(not os.path.exists(os.path.join(sdir, "generic")) and stop.startswith("time budget"),
          f"spent budget: no test started ({stop!r})")


def heartbeat_lines(tmp, name, cur, seconds=3.5):
    """guest-mark heartbeat 1 for `seconds` while a long-lived process whose
    command line names a filler file runs; returns its lines (fd 3)."""
    d = os.path.join(tmp, name)
    os.makedirs(d)
    e = dict(os.environ, XFST_FS="ferrofs", XFST_CUR=os.path.join(d, "cur"), XFST_PROGRESS=os.path.join(d, "progress"))
    write(e["XFST_CUR"], cur)
    hb = subprocess.Popen(["sh", "-c", 'exec 3>>"$XFST_PROGRESS"; exec "$@"', "sh",
                           os.path.join(here, "guest-mark"), "heartbeat", "1"], env=e)
    time.sleep(0.3)
    # the newest process: a stand-in for a test's xfs_io, with a "BUG:" in
    # its command line that must not reach the console
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(9)", "pwrite BUG: /mnt/scratch/filler_41233"])
    time.sleep(0.2)
    # newer still, something ps shows as a kernel thread (the guest's
    # kworkers): passed over
    kthread = subprocess.Popen(["bash", "-c", 'exec -a "[kworker/u8:0-events]" sleep 9'])
    time.sleep(0.2)
    # newest of all, a process outside the heartbeat's parent's tree (its
    # shell exits, init adopts it): another job on the machine, passed over
    other = int(subprocess.run(["bash", "-c", '(exec -a "other-job /elsewhere/filler_99999" sleep 9) </dev/null >/dev/null 2>&1 & echo $!'],
                               capture_output=True, text=True).stdout)
    time.sleep(seconds)
    for p in (hb, worker, kthread):
        p.kill()
        p.wait()
    try:
        os.kill(other, 9)
    except ProcessLookupError:
        pass  # it had its 9 s already (a slow host)
    return open(e["XFST_PROGRESS"]).read().splitlines() if os.path.exists(e["XFST_PROGRESS"]) else []


def check_heartbeat(tmp):
    """guest-mark heartbeat: a line per interval for a test that has run that
    long, naming the newest process; nothing between tests or early on."""
    now = int(time.time())
    lines = heartbeat_lines(tmp, "hb1", f"generic/562 1 {now - 300}\n")
    check(len(lines) >= 2 and all(x.startswith("xfstests: ferrofs generic/562 still running after 5 min (newest process: ")
                                  for x in lines),
          f"a test running for 5 minutes gets a line a second: {lines}")
    check(lines and "/mnt/scratch/filler_41233" in lines[-1] and "BUG:" not in lines[-1],
          f"naming the newest process but a kernel thread, without its colons: {lines[-1:]}")
    lines = heartbeat_lines(tmp, "hb2", f"generic/001 1 {now + 3600}\n", 1.5)
    check(lines == [], f"nothing for a test that has run less than the interval: {lines}")
    lines = heartbeat_lines(tmp, "hb3", "- 4 0\n", 1.5)
    check(lines == [], f"nothing between tests: {lines}")


def run_ledger(ledger, tree, repo, *a, **kw):
    """ledger.py with a scratch ledger and scratch rendered files; output
    captured unless KW says where it goes (subprocess.run's keywords)."""
    return subprocess.run([sys.executable, os.path.join(here, "ledger.py"), "--ledger", ledger,
                           "--tree", tree, "--repo", repo, *a],
                          **dict(dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), **kw))


def ledger_outcomes(ledger):
    """test -> outcome, from a ledger file."""
    return {x.split("\t")[0]: x.split("\t")[2] for x in open(ledger) if x.startswith("generic/")}


def check_run_lock(tmp):
    """scripts/xfstests refuses a run directory another one is using, before
    it touches anything there (it would delete that chunk's NVDIMM images)."""
    xfst = os.path.join(tmp, "xfstests")
    for f in ("check", "ltp/fsx"):
        write(os.path.join(xfst, f), "#!/bin/sh\n")
        os.chmod(os.path.join(xfst, f), 0o755)
    write(os.path.join(xfst, "common/rc"), "")
    write(os.path.join(xfst, "tests/generic/group.list"), "001 auto quick\n")
    run = os.path.join(tmp, "busy-run")
    write(os.path.join(run, "results/.keep"), "")
    write(os.path.join(run, "pmem0.img"), "in use")
    with open(os.path.join(run, ".lock"), "a") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX | fcntl.LOCK_NB)
        p = subprocess.run([os.path.join(here, "..", "..", "scripts/xfstests"), "-r", run, "-t", "generic/001", xfst],
                           capture_output=True, text=True, timeout=120)
    check(p.returncode == 2 and "in use by another scripts/xfstests" in p.stderr,
          f"a locked run directory is refused: rc {p.returncode}, {p.stderr.strip()!r}")
    check(os.path.exists(os.path.join(run, "pmem0.img")) and not os.path.exists(os.path.join(run, "tree")),
          "and its NVDIMM image and tree are left alone")
    # an NVDIMM size that is no number of MiB is refused before any run
    # directory is made (vm-run would otherwise fail after the tree copy)
    fresh = os.path.join(tmp, "pmem-size-run")
    write(os.path.join(fresh, "results/.keep"), "")
    for bad in ("6g", "1000", "0"):
        p = subprocess.run([os.path.join(here, "..", "..", "scripts/xfstests"), "-r", fresh, "-t", "generic/001", xfst],
                           capture_output=True, text=True, timeout=120, env=dict(os.environ, XFSTESTS_PMEM_MIB=bad))
        check(p.returncode == 2 and f"XFSTESTS_PMEM_MIB must be a number of MiB that is a multiple of 16 "
              f"(fsdax alignment), not '{bad}'" in p.stderr and not os.path.exists(os.path.join(fresh, "tree")),
              f"XFSTESTS_PMEM_MIB={bad} is refused before the run starts: rc {p.returncode}, {p.stderr.strip()!r}")
    # so is a kernel flavour build-kernel does not know
    p = subprocess.run([os.path.join(here, "..", "..", "scripts/xfstests"), "-r", fresh, "-t", "generic/001", xfst],
                       capture_output=True, text=True, timeout=120, env=dict(os.environ, FERROFS_KERNEL_FLAVOUR="fast"))
    check(p.returncode == 2 and "FERROFS_KERNEL_FLAVOUR must be default, debug or bench, not 'fast'" in p.stderr
          and not os.path.exists(os.path.join(fresh, "tree")),
          f"FERROFS_KERNEL_FLAVOUR=fast is refused before the run starts: rc {p.returncode}, {p.stderr.strip()!r}")


def main():
    tmp = tempfile.mkdtemp(prefix="ferrofs-xfst-selftest.")
    try:
        check_guest_mark(tmp)
        check_heartbeat(tmp)
        check_run_lock(tmp)
        tree = os.path.join(tmp, "tree")
        write(os.path.join(tree, "tests/generic/group.list"),
              "001 auto quick\n002 auto quick\n003 auto quick\n004 auto quick\n"
              "005 auto\n605 auto quick dax\n606 auto clone\n")
        exp = os.path.join(tmp, "expunge.ferrofs")
        write(exp, "# comment\ngeneric/605  # mounts -o dax=inode\n")
        run = os.path.join(tmp, "run")
        write(os.path.join(run, "chunks/001/meta"),
              "started\t2026-11-30T14:00:00Z\nxfstests\tabcdef01\nferrofs\t12345678\n")
        sel = runstate.select(tree, "quick", "")
        check(sel == ["generic/001", "generic/002", "generic/003", "generic/004", "generic/605"],
              f"quick selection in numeric order: {sel}")
        # chunk 001 ran 001..003 and the VM died in 004
        fake_test(run, "ferrofs", "generic/001", "001", XML_PASS, 40)
        fake_test(run, "ferrofs", "generic/002", "001", XML_FAIL, 50)
        fake_test(run, "ferrofs", "generic/003", "001", XML_NOTRUN, 3)
        fake_test(run, "ferrofs", "generic/004", "001", None, 0, crashed=True)
        write(os.path.join(run, "chunks/001/console.log"), "[ 12.3] BUG: kernel NULL pointer dereference, address: 0\n")
        os.makedirs(os.path.join(run, "chunks/002"))
        out = subprocess.run([sys.executable, os.path.join(here, "runstate.py"), "select", tree, "quick", "",
                              "ferrofs", exp, run, "002"], capture_output=True, text=True).stdout.split()
        check(out == ["5", "0", "1"], f"resumed chunk: 5 selected, 0 left, 1 expunged: {out}")
        res = runstate.outcomes(run, "ferrofs")
        got = {t: r["outcome"] for t, r in res.items()}
        check(got == {"generic/001": "pass", "generic/002": "fail", "generic/003": "notrun",
                      "generic/004": "crashed", "generic/605": "expunged"}, f"outcomes {got}")
        check(res["generic/002"]["detail"] == "output mismatch: +wrong size 4096",
              f"failure detail is the first diff line: {res['generic/002']['detail']!r}")
        check(res["generic/004"]["detail"].startswith("guest: BUG: kernel NULL pointer"),
              f"crash detail from the chunk's console: {res['generic/004']['detail']!r}")
        check(res["generic/605"]["detail"] == "mounts -o dax=inode", "expunge reason kept")
        check(res["generic/001"]["seconds"] == "40", "seconds from xunit")

        # the console line alone (guest-check runs ./check without -R xunit)
        for t, (log, outcome, detail) in LOGS.items():
            stem = os.path.join(run, "results", "ferrofs", "state", t)
            write(stem + ".start", "1000 001\n")
            write(stem + ".end", "1099 0\n")
            write(stem + ".log", log)
        res = runstate.outcomes(run, "ferrofs")
        for t, (log, outcome, detail) in LOGS.items():
            r = res[t]
            ok = r["outcome"] == outcome and (detail is None or r.get("detail") == detail or r.get("seconds") == detail)
            check(ok, f"{t} from its console line: {r['outcome']} {r.get('detail')!r} {r.get('seconds')!r}")
        for t in LOGS:
            for ext in (".start", ".end", ".log"):
                os.remove(os.path.join(run, "results", "ferrofs", "state", t + ext))

        # the ledger, in a scratch copy of the two rendered files
        repo = os.path.join(tmp, "repo")
        write(os.path.join(repo, "README.md"), f"head\n{BEGIN}\nold\n{END}\ntail\n")
        write(os.path.join(repo, "Documentation/xfstests.md"),
              f"head\n{BEGIN}\nold\n{END}\nmid\n{EXTRA_BEGIN}\nold\n{EXTRA_END}\ntail\n")
        ledger = os.path.join(tmp, "quick.tsv")

        def led(*a):
            return run_ledger(ledger, tree, repo, *a)
        # a reader that goes away at once (ingest | head) does not stop the
        # render: README's block is replaced and ingest still exits 0
        reader = subprocess.Popen(["head", "-c0"], stdin=subprocess.PIPE)
        reader.wait()
        r = run_ledger(ledger, tree, repo, "ingest", run, stdout=reader.stdin,
                       env=dict(os.environ, PYTHONUNBUFFERED="1"))
        reader.stdin.close()
        readme = open(os.path.join(repo, "README.md")).read()
        check(r.returncode == 0 and "\nold\n" not in readme,
              f"ingest into a closed pipe renders README, exit {r.returncode} ({r.stderr.strip()[-200:]})")
        r = led("ingest", run)
        check(r.returncode == 0, f"ingest exit 0 ({r.stderr.strip()})")
        rows = [line.split("\t") for line in open(ledger) if line.startswith("generic/")]
        check(len(rows) == 5 and all(x[4] == "abcdef01" and x[5] == "12345678" for x in rows),
              f"5 rows with the chunk's commits: {len(rows)}")
        # XFS passes 002: ferrofs fails where XFS passes
        run2 = os.path.join(tmp, "run2")
        write(os.path.join(run2, "chunks/001/meta"), "started\t2026-12-01T09:00:00Z\nxfstests\tabcdef01\nferrofs\t12345678\n")
        fake_test(run2, "xfs", "generic/002", "001", XML_PASS, 30)
        led("ingest", run2)
        readme = open(os.path.join(repo, "README.md")).read()
        check("ferrofs fails where XFS passes (1): generic/002." in readme, "README names generic/002")
        check(readme.startswith("head\n") and readme.endswith("tail\n") and "\nold\n" not in readme,
              "only the block between the markers is replaced")
        before = {f: open(os.path.join(repo, f)).read() for f in ("README.md", "Documentation/xfstests.md")}
        led("render")
        check(all(open(os.path.join(repo, f)).read() == before[f] for f in before), "render is idempotent")
        # the crashed test again (retry), now passing: its row is replaced
        os.makedirs(os.path.join(run, "chunks/003"))
        subprocess.run([sys.executable, os.path.join(here, "runstate.py"), "select", tree, "quick", "",
                        "ferrofs", exp, run, "003", "retry"], check=True, capture_output=True)
        lst = open(os.path.join(run, "chunks/003/list-ferrofs")).read().split()
        check(lst == ["generic/004"], f"retry lists the crashed test only: {lst}")
        write(os.path.join(run, "chunks/003/meta"), "started\t2026-12-02T09:00:00Z\nxfstests\tabcdef01\nferrofs\t9abcdef0\n")
        fake_test(run, "ferrofs", "generic/004", "003", XML_PASS, 20)
        led("ingest", run)
        row = [x.split("\t") for x in open(ledger) if x.startswith("generic/004\tferrofs")]
        check(len(row) == 1 and row[0][2] == "pass" and row[0][5] == "9abcdef0",
              f"re-run replaces the row: {row}")
        # an older run ingested after a newer one leaves the newer row: run2
        # (2026-12-01) again with its 004 crashed leaves chunk 003's pass
        fake_test(run2, "ferrofs", "generic/004", "001", None, 0, crashed=True)
        led("ingest", run2)
        row = [x.split("\t") for x in open(ledger) if x.startswith("generic/004\tferrofs")]
        check(len(row) == 1 and row[0][2] == "pass" and row[0][6] == "2026-12-02T09:01:25Z",
              f"an older result does not replace a newer row: {row}")
        # a row from before results carried their time (the day only) is
        # replaced by a result of that day
        text = open(ledger).read().replace("2026-12-02T09:01:25Z", "2026-12-02")
        open(ledger, "w").write(text)
        run6 = os.path.join(tmp, "run6")
        write(os.path.join(run6, "chunks/001/meta"), "started\t2026-12-02T00:30:00Z\nxfstests\tabcdef01\n"
              "ferrofs\t0fedcba9\n")
        fake_test(run6, "ferrofs", "generic/004", "001", XML_FAIL, 20)
        led("ingest", run6)
        row = [x.split("\t") for x in open(ledger) if x.startswith("generic/004\tferrofs")]
        check(len(row) == 1 and row[0][2] == "fail" and row[0][6] == "2026-12-02T00:31:25Z",
              f"a day-only row is replaced by a result of its day: {row}")
        # a chunk's run conditions reach its rows' detail column
        def ingest_one(name, test, meta_tail, detail, what):
            rdir = os.path.join(tmp, name)
            write(os.path.join(rdir, "chunks/001/meta"), "started\t2026-12-03T09:00:00Z\nxfstests\tabcdef01\n"
                  "ferrofs\t9abcdef0\n" + meta_tail)
            fake_test(rdir, "ferrofs", test, "001", XML_PASS, 20)
            led("ingest", rdir)
            row = [x.rstrip("\n").split("\t") for x in open(ledger) if x.startswith(test + "\tferrofs")]
            check(len(row) == 1 and row[0][2] == "pass" and row[0][7] == detail, f"{what}: {row}")
        # run with XFSTESTS_XFSPROGS, and booted with SELinux (XFSTESTS_SELINUX=1)
        # with the default NVDIMM size (not named), with bigger NVDIMMs
        # (XFSTESTS_PMEM_MIB, named)
        ingest_one("run3", "generic/001", "xfs_io\t6.13.0 (/opt/xfsprogs)\npmem_mib\t2048\nkernel\tdefault\n",
                   "xfs_io 6.13.0", "a row run with another xfsprogs names its xfs_io, "
                   "not the default NVDIMM size or kernel")
        # and on the release-config kernel (FERROFS_KERNEL_FLAVOUR=bench,
        # named; the default kernel is not)
        ingest_one("run4", "generic/002", "xfs_io\t6.1.0\nlsm\tselinux\npmem_mib\t6144\nkernel\tbench\n",
                   "6144 MiB NVDIMMs; bench kernel; selinux",
                   "a row run under SELinux on bigger NVDIMMs and the bench kernel says so")
        heads = [x for x in open(ledger) if x.startswith("# xfstests results ledger")]
        check(len(heads) == 1, f"the header is written once after several ingests: {len(heads)}")
        need = led("need-xfs").stdout.split()
        check(need == ["generic/003", "generic/004", "generic/605"], f"need-xfs (004 failed in run6): {need}")
        # a test of the clone group outside quick goes to extra.tsv, beside
        # the quick ledger, and gets a block of its own in the documentation
        check(led("todo", "--set", "extra").stdout.split() == ["generic/606"], "extra set: generic/606")
        rdir = os.path.join(tmp, "run5")
        write(os.path.join(rdir, "chunks/001/meta"), "started\t2026-12-04T09:00:00Z\nxfstests\tabcdef01\n"
              "ferrofs\t9abcdef0\n")
        fake_test(rdir, "ferrofs", "generic/606", "001", XML_FAIL, 20)
        fake_test(rdir, "ferrofs", "generic/005", "001", XML_PASS, 20)
        led("ingest", rdir)
        extra = os.path.join(tmp, "extra.tsv")
        erows = [x.split("\t")[:3] for x in open(extra) if x.startswith("generic/")] if os.path.exists(extra) else []
        check(erows == [["generic/606", "ferrofs", "fail"]], f"extra.tsv has generic/606 only: {erows}")
        check(not [x for x in open(ledger) if x.startswith(("generic/606", "generic/005"))],
              "quick.tsv has neither the extra test nor one of no set")
        check(led("todo", "--set", "extra").stdout.split() == [], "extra set: nothing left to run")
        check(led("need-xfs", "--set", "extra").stdout.split() == ["generic/606"], "extra set needs XFS for 606")
        doc = open(os.path.join(repo, "Documentation/xfstests.md")).read()
        blk = doc[doc.index(EXTRA_BEGIN):doc.index(EXTRA_END)]
        good = "| ferrofs | 1 of 1 | 0 | 1 |" in blk and "tests/xfstests/results/extra.tsv" in blk
        check(good, "the extra block counts generic/606" + ("" if good else f": {blk!r}"))
        check("generic/606" not in doc[:doc.index(EXTRA_BEGIN)], "the quick block does not list it")

        # ingest while a chunk is still going (its scripts/xfstests holds the
        # run's lock): the unfinished test is running, not crashed
        run3 = os.path.join(tmp, "run3")
        write(os.path.join(run3, "chunks/001/meta"), "started\t2026-12-03T09:00:00Z\nxfstests\tabcdef01\nferrofs\t12345678\n")
        fake_test(run3, "ferrofs", "generic/001", "001", XML_PASS, 30)
        fake_test(run3, "ferrofs", "generic/002", "001", None, 0, crashed=True)
        live, repo3 = os.path.join(tmp, "live.tsv"), os.path.join(tmp, "repo3")
        write(os.path.join(repo3, "README.md"), "")
        write(os.path.join(repo3, "Documentation/xfstests.md"), "")
        with open(os.path.join(run3, ".lock"), "a") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)
            r = run_ledger(live, tree, repo3, "ingest", run3)
        rows = ledger_outcomes(live)
        check(rows == {"generic/001": "pass"} and "1 still running, left out" in r.stdout,
              f"a live run's unfinished test is left out: {rows} {r.stdout.strip()!r}")
        run_ledger(live, tree, repo3, "ingest", run3)
        rows = ledger_outcomes(live)
        check(rows == {"generic/001": "pass", "generic/002": "crashed"},
              f"and once its lock is gone, it is crashed: {rows}")
    finally:
        shutil.rmtree(tmp)
    print(f"selftest: {len(failures)} failed" if failures else "selftest: all passed")
    return 1 if failures else 0


sys.exit(main())
