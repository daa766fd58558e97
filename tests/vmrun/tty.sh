# make vm's shell on a real terminal (a pty, as a user at a terminal has):
# qemu reads the terminal raw, the guest learns the terminal's size, Ctrl-C
# interrupts the guest's foreground job (not qemu), Ctrl-D at the prompt
# powers the VM off, and the host terminal is restored afterwards. One boot.
# shellcheck source=tests/host/lib.sh
. "$(dirname "$0")/../host/lib.sh"
cd "$here"
python3 - "$scratch" <<'PY'
import os, pty, re, select, struct, sys, fcntl, termios, time

scratch = sys.argv[1]
failed = 0
def ok(what, cond):
    global failed
    failed += not cond
    print(("ok - " if cond else "not ok - ") + what, flush=True)

pid, fd = pty.fork()
if pid == 0:
    os.environ["TERM"] = "xterm"
    os.execvp("bash", ["bash", "-c",
        'scripts/vm-run --shell --timeout 400; echo "vm-run exited $?"; stty -a | grep -o -- "-\\?icanon" | head -1'])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 37, 111, 0, 0))
buf = b""
def plain():
    # the output without terminal escapes (bash's bracketed-paste mode) and
    # carriage returns (the guest's \r\n passes the pty's onlcr as \r\r\n)
    return re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", buf).replace(b"\r", b"")
def read_until(pat, timeout):
    global buf
    end = time.time() + timeout
    while time.time() < end:
        m = re.search(pat, plain())
        if m:
            return m
        r, _, _ = select.select([fd], [], [], 1)
        if r:
            try:
                d = os.read(fd, 65536)
            except OSError:
                break
            if not d:
                break
            buf += d
    return re.search(pat, plain())
def send(b):
    os.write(fd, b)

got = read_until(rb"ferrofs-vm:[^\n]*# ", 400)
ok("the shell's prompt comes up on the terminal", bool(got))
if got:
    mark = len(buf)
    send(b"stty size\r")
    m = read_until(rb"\n37 111\n", 60)
    ok("the guest has the terminal's size (stty size: 37 111)", bool(m))
    send(b"sleep 300; echo not-interrupted\r")
    read_until(rb"sleep 300; echo not-interrupted\n", 60)
    time.sleep(8)
    send(b"\x03")
    send(b"echo after-ctrl-c:$?\r")
    m = read_until(rb"\nafter-ctrl-c:(\d+)\n", 90)
    ok("Ctrl-C interrupts the guest's foreground job (status %s), qemu keeps running"
       % (m.group(1).decode() if m else "none"), bool(m) and m.group(1) == b"130" and b"\nnot-interrupted\n" not in plain())
    read_until(rb"ferrofs-vm:[^\n]*# $", 30)
    send(b"\x04")
    m = read_until(rb"vm-run exited (\d+)", 120)
    ok("Ctrl-D at the prompt powers the VM off, vm-run exits 0 (%s)" % (m.group(1).decode() if m else "no exit"),
       bool(m) and m.group(1) == b"0")
    m = read_until(rb"\n(-?icanon)\n", 30)
    ok("the host terminal is back in canonical mode after the VM (%s)" % (m.group(1).decode() if m else "?"),
       bool(m) and m.group(1) == b"icanon")
open(os.path.join(scratch, "tty.out"), "wb").write(buf)
# the child leads its own process group (pty.fork makes it a session
# leader): end what is left of it, qemu included, by that group's id
import signal
for sig in (signal.SIGHUP, signal.SIGKILL):
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        break
    time.sleep(2)
os.waitpid(pid, 0)
if failed:
    print("--- terminal output tail")
    print(buf[-3000:].decode(errors="replace"))
sys.exit(1 if failed else 0)
PY
[ $? = 0 ] || n_fail=$((n_fail + 1))
finish
