#!/bin/sh
# Device removal while mounted and mapped (MF_MEM_PRE_REMOVE through the dax
# holder): the filesystem shuts down, every mapping is torn down, a process
# touching its mapping gets SIGBUS, reads fail with EIO, umount still works.
. "$FERROFS_SRC/tests/guest/lib.sh"
cc -O2 -o /tmp/ferrofs-victim "$FERROFS_SRC/tests/guest/mf/victim.c"
rm -f /tmp/ferrofs-go
fresh_fs
python3 -c "
import os
fd = os.open('$MNT/f', os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b'x' * 16384); os.fsync(fd)"
/tmp/ferrofs-victim "$MNT/f" 2 late > /tmp/victim.out &
victim=$!
trap 'kill $victim 2>/dev/null; wait $victim 2>/dev/null' EXIT
for i in $(seq 50); do grep -q ready /tmp/victim.out && break; sleep 0.1; done
grep -q ready /tmp/victim.out || fail "victim did not map the file"
exec 3<"$MNT/f"
dmesg_mark
# ndctl refuses to disable a namespace in use; unbinding the driver cannot
# be refused, as when the device goes away (hot unplug, driver removal).
dev=$(basename "$(readlink -f /sys/block/pmem0/device)")
drv=$(readlink -f "/sys/block/pmem0/device/driver")
echo "$dev" > "$drv/unbind" || fail "unbinding $dev from $drv failed"
[ ! -e /sys/block/pmem0 ] || fail "/dev/pmem0 still present after unbind"
dmesg_has "ferrofs \(pmem0\): shutting down: the pmem device is being removed"
touch /tmp/ferrofs-go
rc=0; wait $victim || rc=$?
trap - EXIT
expect_eq "victim exit status (42 = SIGBUS caught)" "$rc" 42
grep -q "sigbus code=" /tmp/victim.out || fail "no SIGBUS: $(cat /tmp/victim.out)"
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
