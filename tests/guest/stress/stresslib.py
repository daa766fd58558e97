"""Helpers for the in-guest stress suite (tests/guest/stress/): the kernel
log as a stream, markers in it, summaries the host collects, and tuning
knobs from FERROFS_T_STRESS_* (short defaults for `make test`)."""
import errno
import os
import re
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.environ.get("FERROFS_SRC", "."), "tests/guest"))

DEV = os.environ.get("DEV", "/dev/pmem0")
MNT = os.environ.get("MNT", "/mnt/test")
HERE = os.path.dirname(os.path.abspath(__file__))

# The same list scripts/vm-run checks at the end of a run. We check as we go
# too: the guest's log buffer is small and a long run would push an early
# report out of the `dmesg` vm-run reads.
BAD = re.compile(r"Oops|BUG:|WARNING:|Kernel panic|general protection fault|possible circular locking|"
                 r"possible recursive locking|inconsistent lock state|INFO: lockdep|KASAN|UBSAN|"
                 r"blocked for more than|soft lockup|rcu.*stall|panicked at|list_(add|del) corruption|"
                 r"refcount_t:|kernel BUG|Call Trace")


def knob(name, short, long=None, prefix="FERROFS_T_STRESS_"):
    """<prefix><NAME> (FERROFS_T_STRESS_<NAME> unless a test has its own
    prefix), or the short default; FERROFS_T_STRESS_LONG=1 selects the
    long default."""
    v = os.environ.get(prefix + name)
    if v is not None:
        return type(short)(v)
    if os.environ.get("FERROFS_T_STRESS_LONG") == "1" and long is not None:
        return long
    return short


class Kmsg:
    """New kernel log records since the last call (reads /dev/kmsg)."""

    def __init__(self):
        self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(self.fd, 0, os.SEEK_END)
        self.bad = []

    def new(self):
        out = []
        while True:
            try:
                rec = os.read(self.fd, 8192)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.EPIPE:  # overrun: records were lost
                    out.append("ferrofs-stress: (kernel log records lost)")
                    continue
                raise
            if not rec:
                break
            text = rec.decode(errors="replace")
            msg = text.split(";", 1)[1] if ";" in text else text
            out.append(msg.split("\n", 1)[0])
        for line in out:
            if BAD.search(line) and not line.startswith("ferrofs-stress:"):
                self.bad.append(line)
        return out

    def check(self, context):
        """Fail if the kernel reported an oops/WARN/lockdep/KASAN so far."""
        self.new()
        if self.bad:
            raise AssertionError(f"kernel log is not clean after {context}:\n" + "\n".join(self.bad[:20]))


def cache_dropper(seconds=3):
    """Starts a daemon thread that drops the page, dentry and inode caches
    every `seconds`; returns the function that stops it and waits for it."""
    stop = threading.Event()

    def dropper():
        while not stop.wait(seconds):
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("3")

    th = threading.Thread(target=dropper, daemon=True)
    th.start()

    def halt():
        stop.set()
        th.join()
    return halt


def mark(msg):
    """A line in the kernel log, so reports can be attributed."""
    try:
        with open("/dev/kmsg", "w") as f:
            f.write(f"ferrofs-stress: {msg}\n")
    except OSError:
        pass


def summary(part, **counts):
    """One line the host (scripts/stress) collects: 'stress-summary: PART k=v ...'."""
    kv = " ".join(f"{k}={v}" for k, v in counts.items())
    print(f"stress-summary: {part} {kv}", flush=True)


def ename(e):
    return errno.errorcode.get(e, str(e))


def sh(cmd, check=True):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"`{cmd}` exited {r.returncode}: {r.stdout}{r.stderr}")
    return r


def fsck_clean(dev=DEV):
    r = subprocess.run(["fsck.ferrofs", "-n", dev], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"fsck.ferrofs -n {dev} exited {r.returncode}:\n{r.stdout}{r.stderr}")


def build_c(name):
    """Compile tests/guest/stress/NAME.c into /tmp/NAME (cc in the guest's
    chroot is the host's gcc)."""
    src = f"{HERE}/{name}.c"
    # built on the host by scripts/test and scripts/stress (compiling under
    # TCG takes tens of seconds); the guest's root is the host's
    pre = os.path.join(os.environ.get("FERROFS_SRC", "."), "out/stress/bin", name)
    if os.path.exists(pre) and os.path.getmtime(pre) >= os.path.getmtime(src):
        return pre
    out = f"/tmp/{name}"
    if not os.path.exists(out):
        sh(f"cc -O2 -Wall -o {out} {src}")
    return out
