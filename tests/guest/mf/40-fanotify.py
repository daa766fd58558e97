#!/usr/bin/env python3
"""fanotify FAN_FS_ERROR on lost file data (issue 18).

A watcher (fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID), a filesystem
mark for FAN_FS_ERROR) is told, with each owner's file handle and EIO:
  - at the memory failure, about every cached owner of the poisoned block.
    fanotify (6.12) merges error events of one filesystem while one is
    queued, so a burst may arrive as fewer events whose counts add up;
  - at each later read of the lost range through any of the files, and at a
    mapped load of it (SIGBUS): one event per access, naming that file.
The handles must equal what name_to_handle_at gives for each file."""
import os
import select
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest
from fsutil import expect_errno, fiemap, pattern
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mflib import shared_files  # noqa: E402

B = 4096
EIO = 5
WATCH = "/tmp/ferrofs-fswatch"
VICTIM = "/tmp/ferrofs-victim"


def build():
    for exe, src in ((WATCH, "fswatch.c"), (VICTIM, "victim.c")):
        if not os.path.exists(exe):
            path = os.path.join(os.environ["FERROFS_SRC"], "tests/guest/mf", src)
            subprocess.run(["cc", "-O2", "-o", exe, path], check=True)


def dbg(name):
    dev = os.path.basename(gtest.DEV)
    with open(f"/sys/kernel/debug/ferrofs/{dev}/{name}") as f:
        return int(f.read(), 0)  # base_pfn is hex


class Watcher:
    def __init__(self, files):
        self.p = subprocess.Popen([WATCH, gtest.MNT] + files, stdout=subprocess.PIPE)
        self.buf = b""
        self.handles = {}
        try:
            while True:
                line = self.line(10)
                assert line is not None, "watcher did not start"
                if line == "ready":
                    break
                _, name, ty, h = line.split()
                self.handles[f"{ty} {h}"] = name
        except BaseException:
            self.close()
            raise

    def line(self, timeout):
        """One line of the watcher's output, or None after timeout. Reads
        the pipe unbuffered: select() cannot see lines a buffered reader
        already pulled in."""
        fd = self.p.stdout.fileno()
        end = time.time() + timeout
        while b"\n" not in self.buf:
            left = end - time.time()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            data = os.read(fd, 4096)
            assert data, f"watcher exited {self.p.wait()}"
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode().strip()

    def events(self, timeout):
        """[(file name or handle, errno, count)] read within timeout."""
        out = []
        end = time.time() + timeout
        while (left := end - time.time()) > 0:
            line = self.line(left)
            if line is None:
                break
            _, ty, h, e, c = line.split()
            key = f"{ty} {h}"
            out.append((self.handles.get(key, key), int(e[6:]), int(c[6:])))
        return out

    def one(self, what):
        ev = self.events(3)
        assert len(ev) == 1, f"{what}: want one FS_ERROR event, got {ev}"
        return ev[0]

    def close(self):
        self.p.kill()
        self.p.wait()




def test_error_event_per_owner():
    build()
    names = ["src", "clone1", "clone2", "clone3"]
    data = pattern(21, 4 * B)
    shared_files(names, data)
    other = os.open("other", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(other, data)
    os.close(other)
    w = Watcher(names + ["other"])
    try:
        assert len(w.handles) == 5, f"handles not distinct: {w.handles}"
        assert w.events(0.5) == [], "events before any failure"
        fd = os.open("src", os.O_RDONLY)
        (logical, physical, _, _), = [e for e in fiemap(fd) if e[0] == 0]
        os.close(fd)
        with open("/sys/kernel/debug/hwpoison/corrupt-pfn", "w") as f:
            f.write(str(dbg("base_pfn") + physical // B + 1))
        # the memory failure: every owner, nobody else, EIO, 4 in all
        ev = w.events(3)
        assert ev and all(n in names and e == EIO for n, e, _ in ev), ev
        assert sum(c for *_, c in ev) == len(names), f"want {len(names)} errors in all: {ev}"
        # each later access through each file: one event naming that file
        for n in names:
            fd = os.open(n, os.O_RDONLY)
            assert os.pread(fd, B, 0) == data[:B]
            expect_errno("EIO", os.pread, fd, B, B)
            os.close(fd)
            assert w.one(f"read of {n}") == (n, EIO, 1)
        assert os.pread(os.open("other", os.O_RDONLY), 4 * B, 0) == data
        assert w.events(0.5) == [], "event for a file that lost nothing"
        # a mapped load of the lost page: SIGBUS and an event
        r = subprocess.run([VICTIM, "clone2", "1", "late"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 42 and "code=4 addr_ok=1" in r.stdout, (r.returncode, r.stdout)
        assert w.one("mapped load of clone2") == ("clone2", EIO, 1)
    finally:
        w.close()


if __name__ == "__main__":
    gtest.main(globals())
