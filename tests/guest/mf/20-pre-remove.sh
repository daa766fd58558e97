#!/bin/sh
# Device removal while mounted and mapped (MF_MEM_PRE_REMOVE through the dax
# holder): the filesystem shuts down, every mapping is torn down, and every
# process mapping a file is told at once with SIGBUS (BUS_MCEERR_AO at the
# address it maps), whatever its kill policy and through whichever reflinked
# file it maps (as XFS does); reads fail with EIO, umount still works.
. "$FERROFS_SRC/tests/guest/lib.sh"
cc -O2 -o /tmp/ferrofs-victim "$FERROFS_SRC/tests/guest/mf/victim.c"
rm -f /tmp/ferrofs-go
fresh_fs
python3 -c "
import os, fcntl
fd = os.open('$MNT/f', os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b'x' * 16384); os.fsync(fd)
g = os.open('$MNT/g', os.O_RDWR | os.O_CREAT, 0o644)
fcntl.ioctl(g, 0x40049409, fd)"
/tmp/ferrofs-victim "$MNT/f" 2 late > /tmp/victim.out &
victim=$!
/tmp/ferrofs-victim "$MNT/g" 2 early > /tmp/victim2.out &
victim2=$!
trap 'kill $victim $victim2 2>/dev/null; wait $victim $victim2 2>/dev/null' EXIT
for i in $(seq 50); do grep -q ready /tmp/victim.out && grep -q ready /tmp/victim2.out && break; sleep 0.1; done
grep -q ready /tmp/victim.out || fail "victim did not map the file"
grep -q ready /tmp/victim2.out || fail "victim did not map the clone"
exec 3<"$MNT/f"
dmesg_mark
# ndctl refuses to disable a namespace in use; unbinding the driver cannot
# be refused, as when the device goes away (hot unplug, driver removal).
dev=$(basename "$(readlink -f /sys/block/pmem0/device)")
drv=$(readlink -f "/sys/block/pmem0/device/driver")
echo "$dev" > "$drv/unbind" || fail "unbinding $dev from $drv failed"
[ ! -e /sys/block/pmem0 ] || fail "/dev/pmem0 still present after unbind"
dmesg_has "ferrofs \(pmem0\): shutting down: the pmem device is being removed"
# no go file: the signal must come from the removal, not from an access
rc=0; wait $victim || rc=$?
rc2=0; wait $victim2 || rc2=$?
trap - EXIT
expect_eq "late-kill victim exit status (42 = SIGBUS caught)" "$rc" 42
expect_eq "early-kill victim of the clone exit status" "$rc2" 42
grep -q "sigbus code=5 addr_ok=1" /tmp/victim.out || fail "late-kill victim: $(cat /tmp/victim.out)"
grep -q "sigbus code=5 addr_ok=1" /tmp/victim2.out || fail "early-kill victim: $(cat /tmp/victim2.out)"
got=$(python3 -c "
import os
try:
    os.pread(3, 10, 0); print('OK')
except OSError as e:
    print(os.strerror(e.errno))")
expect_eq "read after removal" "$got" "Input/output error"
exec 3<&-
umount "$MNT" || fail "umount after device removal failed"
echo "$dev" > "$drv/bind" || fail "rebinding $dev failed"
