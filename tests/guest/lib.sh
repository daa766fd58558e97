# Shared helpers for in-guest shell tests. Source it; tests run with set -eu.
set -eu
DEV=${DEV:-/dev/pmem0}
MNT=${MNT:-/mnt/test}
PYLIB="$FERROFS_SRC/tests/guest"
export PYTHONPATH="$PYLIB${PYTHONPATH:+:$PYTHONPATH}"

fail() { echo "FAILED: $*" >&2; exit 1; }
note() { echo "-- $*"; }
# expect_eq WHAT GOT WANT
expect_eq() { [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"; }
# dmesg_has REGEX: the kernel log since the test started mentions REGEX
kmsg() { python3 "$PYLIB/fsutil.py" kmsg; }
dmesg_mark() { DMESG_MARK=$(kmsg | wc -l); }
dmesg_has() { kmsg | tail -n +"$(( ${DMESG_MARK:-0} + 1 ))" | grep -Eq "$1" || { kmsg | tail -20; fail "dmesg lacks /$1/"; }; }
# mount_errno DEV DIR [OPTS]: prints the errno name of mount(2) (OK on success)
mount_errno() { python3 -c 'import sys, fsutil; print(fsutil.mount_errno(*sys.argv[1:]))' "$@"; }
fresh_fs() {
  mkfs.ferrofs -f -q "$DEV"
  mount -t ferrofs -o dax "$DEV" "$MNT"
}
fsck_clean() {
  fsck.ferrofs -n "$DEV" || fail "fsck.ferrofs -n $DEV exited $?"
}
