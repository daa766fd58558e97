"""Helpers shared by the memory-failure tests (not a test: not executable).

victim.c maps one page of a file (or a 2 MiB window) and reports the SIGBUS
it gets; the tests spawn one per mapper and one to inject the poison."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ["FERROFS_SRC"], "tests/guest"))
import gtest  # noqa: E402
from fsutil import clone, fiemap  # noqa: E402

BUS_MCEERR_AR, BUS_MCEERR_AO = 4, 5
VICTIM = "/tmp/ferrofs-victim"

# every victim spawned, so a failed test can kill what still holds the mount
LIVE = []


def build_victim():
    if not os.path.exists(VICTIM):
        src = os.path.join(os.environ["FERROFS_SRC"], "tests/guest/mf/victim.c")
        subprocess.run(["cc", "-O2", "-o", VICTIM, src], check=True)


def dbg(name):
    """A counter from the mount's debugfs directory (decimal or 0x hex)."""
    dev = os.path.basename(gtest.DEV)
    with open(f"/sys/kernel/debug/ferrofs/{dev}/{name}") as f:
        return int(f.read(), 0)


def spawn(path, page, mode, maplen=None):
    """A victim that has mapped `page` of `path` and read it ("ready")."""
    args = [VICTIM, path, str(page), mode] + ([str(maplen)] if maplen else [])
    p = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    LIVE.append(p)
    line = p.stdout.readline()
    assert line.startswith("ready"), f"{path}: {line!r}"
    return p


def finish(p):
    out = p.stdout.read()
    p.wait(timeout=40)
    return p.returncode, out


def kill_victims():
    """A failed test must not leave mappers holding the mount."""
    for p in LIVE:
        if p.poll() is None:
            p.kill()
            p.wait()
    LIVE.clear()


def shared_files(names, data):
    """names[0] holds `data`; every other name is a reflink of it."""
    fd = os.open(names[0], os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, data)
    os.fsync(fd)
    for n in names[1:]:
        d = os.open(n, os.O_RDWR | os.O_CREAT, 0o644)
        clone(fd, d)
        os.close(d)
    os.close(fd)


def inject_pfn(path, page):
    """Poisons page `page` of `path` from no mapper at all (hwpoison's
    corrupt-pfn, as a patrol scrub or an ARS would report it)."""
    B = 4096
    fd = os.open(path, os.O_RDONLY)
    # only the page's own extent: a file of many reflinks has more extents
    # than one FIEMAP call returns
    ext = [e for e in fiemap(fd, page * B, B) if e[0] <= page * B < e[0] + e[2]]
    os.close(fd)
    assert ext, f"{path}: page {page} is not mapped"
    logical, physical = ext[0][0], ext[0][1]
    pblk = (physical + page * B - logical) // B
    with open("/sys/kernel/debug/hwpoison/corrupt-pfn", "w") as f:
        f.write(str(dbg("base_pfn") + pblk))
    return pblk


def with_cleanup(fn):
    """Runs test `fn`, then kills whatever victims it left."""
    def run():
        try:
            fn()
        finally:
            kill_victims()
    run.__name__ = fn.__name__
    return run
