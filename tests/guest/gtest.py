"""Minimal in-guest test harness for ferrofs.

A test file defines functions named test_*; main() makes a fresh ferrofs on
$DEV, mounts it -o dax on $MNT, runs each test in a fresh subdirectory,
unmounts, and runs fsck.ferrofs -n. Any exception fails the test; the exit
status is non-zero if anything failed (including fsck).
"""
import os
import subprocess
import sys
import traceback

DEV = os.environ.get("DEV", "/dev/pmem0")
MNT = os.environ.get("MNT", "/mnt/test")


def sh(cmd, check=True):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"`{cmd}` exited {r.returncode}: {r.stdout}{r.stderr}")
    return r.stdout


def mkfs_mount():
    sh(f"mkfs.ferrofs -f -q {DEV}")
    mount()


def mount():
    sh(f"mount -t ferrofs -o dax {DEV} {MNT}")


def umount():
    sh(f"umount {MNT}")


def mount_with(extra):
    """DEV on MNT with `-o dax,EXTRA` (unmounted first; what the test left
    open there is closed, and the working directory leaves it)."""
    os.chdir("/")
    release_mount()
    if os.path.ismount(MNT):
        umount()
    sh(f"mount -t ferrofs -o dax{',' + extra if extra else ''} {DEV} {MNT}")


def remount():
    """Unmount and mount again. Files and mappings the caller still has open
    on the mount are closed first; the harness's cwd is inside the mount, so
    step out meanwhile."""
    release_mount()
    cwd = os.getcwd()
    os.chdir("/")
    try:
        umount()
        mount()
    finally:
        os.chdir(cwd)


def fsck_now():
    """Unmount, run fsck.ferrofs -n, mount again: (exit code, output)."""
    release_mount()
    cwd = os.getcwd()
    os.chdir("/")
    try:
        umount()
        r = subprocess.run(["fsck.ferrofs", "-n", DEV], capture_output=True, text=True)
        mount()
    finally:
        os.chdir(cwd)
    return r.returncode, r.stdout + r.stderr


def drop_caches():
    sh("sync; echo 3 > /proc/sys/vm/drop_caches")


def statfs_free():
    st = os.statvfs(MNT)
    return st.f_bfree


def release_mount():
    """Close whatever a test left open on the mount (fds, mappings), so the
    next remount or the final umount is not refused as busy."""
    import gc
    gc.collect()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith(MNT + "/"):
                os.close(int(fd))
        except OSError:
            pass


def main(module_globals):
    tests = sorted((n, f) for n, f in module_globals.items() if n.startswith("test_") and callable(f))
    only = sys.argv[1:]
    mkfs_mount()
    unknown = [n for n in only if n not in dict(tests)]
    if unknown:
        print(f"no such test: {' '.join(unknown)}")
        sys.exit(2)
    failed = []
    ran = 0
    for name, fn in tests:
        if only and name not in only:
            continue
        ran += 1
        d = os.path.join(MNT, name)
        os.mkdir(d)
        cwd = os.getcwd()
        os.chdir(d)
        try:
            fn()
            print(f"ok   {name}", flush=True)
        except Exception:
            failed.append(name)
            print(f"FAIL {name}", flush=True)
            traceback.print_exc()
        finally:
            os.chdir(cwd)
            release_mount()
    if not os.path.ismount(MNT):
        mount()
    umount()
    r = subprocess.run(["fsck.ferrofs", "-n", DEV], capture_output=True, text=True)
    if r.returncode != 0:
        failed.append("fsck")
        print(f"FAIL fsck.ferrofs -n exited {r.returncode}\n{r.stdout}{r.stderr}")
    ok = ran - len([f for f in failed if f != "fsck"])
    print(f"{ok} ok, {len(failed)} failed{': ' + ' '.join(failed) if failed else ''} (and fsck.ferrofs -n {'failed' if 'fsck' in failed else 'clean'})")
    sys.exit(1 if failed else 0)
