#!/bin/sh
# `mount -t ferrofs` loads the module on demand (alias fs-ferrofs), as with
# an installed module; rmmod then works with nothing leaked.
. "$FERROFS_SRC/tests/guest/lib.sh"
rmmod ferrofs || fail "rmmod with nothing mounted failed"
grep -q ferrofs /proc/filesystems && fail "ferrofs still registered after rmmod"
mkfs.ferrofs -f -q "$DEV"
mount -t ferrofs -o dax "$DEV" "$MNT" || fail "mount did not load ferrofs on demand"
grep -q '^ferrofs ' /proc/modules || fail "module not loaded"
umount "$MNT"
rmmod ferrofs && insmod "$FERROFS_KO"   # leave it loaded for the runner
