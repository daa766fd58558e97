#!/usr/bin/env python3
"""Crash verifier (VM #2 of scripts/crash-test), on the NVDIMM image the
workload left behind when sysrq-b rebooted the machine.

1. fsck.ferrofs -n on the crashed image. It must exit 0, except that an
   interrupted transaction is expected when the crash hit one: fsck -n then
   reports exactly "journal: ... interrupted transaction" (and nothing else,
   since it checks the rolled-back state in an overlay).
2. mount (recovery rolls the transaction back, orphans are reaped).
3. Every path of the manifest ($FERROFS_T_CRASH_MANIFEST), by its last record:
   "file" -> exists, exact size, sha256 (crc32 per 64 KiB to say where it
   differs); "absent" -> does not exist; "dirty" -> if it exists it must be
   readable to its end.
4. The filesystem is usable: mkdir, create, write 1 MiB, fsync, read back,
   reflink it, rename, unlink, rmdir.
5. umount, fsck -n must exit 0; mount again and check the manifest again
   (recovery and reaping are done once, not on every mount), umount, fsck -n.
Prints "verify: OK ..." and exits 0, or lists every failure and exits 1.
"""
import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import zlib

DEV, MNT = "/dev/pmem0", "/mnt/test"
FICLONE = 0x40049409
failures = []


def fail(msg):
    failures.append(msg)
    print("verify: FAIL " + msg, flush=True)


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def mount():
    rc, out = run(["mount", "-t", "ferrofs", "-o", "dax", DEV, MNT])
    if rc:
        fail(f"mount after crash exited {rc}: {out}")
        finish()


def umount():
    rc, out = run(["umount", MNT])
    if rc:
        fail(f"umount exited {rc}: {out}")
        finish()


def fsck(when, allow_journal=False):
    rc, out = run(["fsck.ferrofs", "-n", DEV])
    print(f"verify: fsck -n ({when}) exited {rc}" + (f":\n{out}" if rc else ""), flush=True)
    if rc == 0:
        return False
    problems = [l for l in out.splitlines() if re.match(r"^[a-z ]+: block \d+: ", l)]
    journal_only = problems and all(re.match(r"^journal: block \d+: interrupted transaction", l) for l in problems)
    if allow_journal and journal_only:
        return True
    fail(f"fsck.ferrofs -n ({when}) exited {rc}: {out.strip()}")
    return False


def load_manifest(path):
    last = {}
    n = 0
    with open(path) as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):
        if not line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            if i == len(lines) - 1:
                continue    # a torn last line cannot be: writes are synchronous, but be exact about it
            fail(f"manifest line {i + 1} is not JSON: {line[:100]!r}")
            continue
        n += 1
        for k in ("file", "absent", "dirty"):
            if k in rec:
                last[rec[k]] = (k, rec)
    return last, n


def check_manifest(last, when):
    counts = {"file": 0, "absent": 0, "dirty": 0}
    for p, (kind, rec) in sorted(last.items()):
        counts[kind] += 1
        if kind == "absent":
            if os.path.lexists(p):
                fail(f"{when}: {p} exists but was unlinked/renamed away and its directory fsync'd")
        elif kind == "dirty":
            if os.path.lexists(p):
                try:
                    with open(p, "rb") as f:
                        f.read()
                except OSError as e:
                    fail(f"{when}: {p} (not durable at the crash) cannot be read: {e}")
        else:
            if not os.path.exists(p):
                fail(f"{when}: {p} is missing but was durable ({rec['size']} bytes)")
                continue
            with open(p, "rb") as f:
                data = f.read()
            size = os.stat(p).st_size
            if size != rec["size"] or len(data) != rec["size"]:
                fail(f"{when}: {p}: size {size} (read {len(data)} bytes), durable size was {rec['size']}")
            if hashlib.sha256(data).hexdigest() != rec["sha"]:
                bad = [i for i, c in enumerate(rec["crc"]) if zlib.crc32(data[i * 65536:(i + 1) * 65536]) != c]
                fail(f"{when}: {p}: content differs from the durable content in 64 KiB chunks "
                     f"{bad[:20]} (first at offset {bad[0] * 65536 if bad else '?'}; {len(bad)} chunks)")
    return counts


def read_everything(when):
    """Every file on the filesystem (also the ones the manifest does not
    name, like storm/) must be readable to its end after recovery."""
    n = 0
    for root, dirs, files in os.walk(MNT):
        for f in files:
            p = os.path.join(root, f)
            try:
                with open(p, "rb") as fh:
                    data = fh.read()
                if len(data) != os.stat(p).st_size:
                    fail(f"{when}: {p}: read {len(data)} bytes, size {os.stat(p).st_size}")
                n += 1
            except OSError as e:
                fail(f"{when}: {p} cannot be read: {e}")
    return n


def usable():
    d = f"{MNT}/after-crash"
    data = os.urandom(1 << 20)
    try:
        os.mkdir(d)
        fd = os.open(f"{d}/a", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        assert os.write(fd, data) == len(data)
        os.fsync(fd)
        assert os.pread(fd, len(data) + 1, 0) == data, "read back differs"
        fd2 = os.open(f"{d}/b", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.ioctl(fd2, FICLONE, fd)
        os.pwrite(fd2, b"cow", 4096)
        assert os.pread(fd, len(data), 0) == data, "source changed by a write to its clone"
        os.close(fd)
        os.close(fd2)
        os.rename(f"{d}/b", f"{d}/c")
        with open(f"{d}/c", "rb") as f:
            assert f.read() == data[:4096] + b"cow" + data[4099:], "clone content wrong"
        os.unlink(f"{d}/a")
        os.unlink(f"{d}/c")
        os.rmdir(d)
    except (OSError, AssertionError) as e:
        fail(f"filesystem not usable after the crash: {type(e).__name__}: {e}")


def finish():
    if failures:
        print(f"verify: FAILED ({len(failures)} problems)", flush=True)
        sys.exit(1)
    sys.exit(0)


def main():
    subprocess.run(["insmod", os.environ["FERROFS_KO"]], check=True)
    last, nrec = load_manifest(os.environ["FERROFS_T_CRASH_MANIFEST"])
    pending = fsck("crashed image", allow_journal=True)
    print(f"verify: {nrec} manifest records, {len(last)} paths; "
          f"{'an interrupted transaction was pending' if pending else 'no transaction was pending'}", flush=True)
    mount()
    counts = check_manifest(last, "after crash")
    nread = read_everything("after crash")
    usable()
    umount()
    fsck("after recovery and use")
    mount()
    check_manifest(last, "second mount")
    umount()
    fsck("end")
    if not failures:
        print(f"verify: OK: {counts['file']} durable files byte for byte, {counts['absent']} absent, "
              f"{counts['dirty']} not durable at the crash, {nread} files readable; "
              f"journal rollback {'yes' if pending else 'no'}", flush=True)
    finish()


if __name__ == "__main__":
    main()
