#!/bin/sh
# Memory failure in metadata (a btree node, then the superblock's region):
# the filesystem shuts down with a dmesg line saying so, file access fails
# with EIO, nothing oopses, umount still works.
. "$FERROFS_SRC/tests/guest/lib.sh"
errno_of() { python3 -c "
import os, sys
try:
    fd = os.open(sys.argv[1], os.O_RDONLY); os.read(fd, 10); print('OK')
except OSError as e:
    print(os.strerror(e.errno))" "$1"; }
inject() { echo "$1" > /sys/kernel/debug/hwpoison/corrupt-pfn || fail "injecting pfn $1 failed"; }

fresh_fs
echo data > "$MNT/f"
umount "$MNT"
root=$(ferrofs-db "$DEV" print | sed -n '/trees: \[/,$p' | grep -m1 'root:' | tr -dc 0-9)
[ -n "$root" ] || fail "cannot find the inode btree root"
mount -t ferrofs -o dax "$DEV" "$MNT"
base=$(cat /sys/kernel/debug/ferrofs/pmem0/base_pfn)
# a fanotify watcher of the filesystem gets one FS_ERROR with no file handle
[ -x /tmp/ferrofs-fswatch ] || cc -O2 -o /tmp/ferrofs-fswatch "$FERROFS_SRC/tests/guest/mf/fswatch.c"
/tmp/ferrofs-fswatch "$MNT" > /tmp/fswatch.out &
watcher=$!
trap 'kill $watcher 2>/dev/null' EXIT
for i in $(seq 50); do grep -q ready /tmp/fswatch.out && break; sleep 0.1; done
grep -q ready /tmp/fswatch.out || fail "fanotify watcher did not start: $(cat /tmp/fswatch.out)"
dmesg_mark
inject $((base + root))
dmesg_has "ferrofs \(pmem0\): memory failure in metadata \(btree node or xattr value\) at block $root"
dmesg_has "ferrofs \(pmem0\): shutting down: memory failure in metadata"
for i in $(seq 30); do grep -q '^error' /tmp/fswatch.out && break; sleep 0.1; done
kill $watcher; wait $watcher 2>/dev/null || true
trap - EXIT
expect_eq "fanotify events on metadata damage" "$(grep '^error' /tmp/fswatch.out)" "error 255 - errno=5 count=1"
echo 3 > /proc/sys/vm/drop_caches
expect_eq "read after metadata failure" "$(errno_of "$MNT/f")" "Input/output error"
touch "$MNT/new" 2>/dev/null && fail "create succeeded on a shut-down filesystem"
umount "$MNT" || fail "umount after shutdown failed"
dmesg_has "ferrofs \(pmem0\): unmounted"

note "fixed metadata region (journal)"
fresh_fs
base=$(cat /sys/kernel/debug/ferrofs/pmem0/base_pfn)
dmesg_mark
inject $((base + 1))
dmesg_has "ferrofs \(pmem0\): memory failure in fixed metadata"
dmesg_has "shutting down"
umount "$MNT"
