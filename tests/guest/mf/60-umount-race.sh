#!/bin/sh
# The dax holder callback (memory failure, device removal) racing umount.
#
# notify_failure reaches ferrofs through the dax_device's holder pointer, not
# through anything that pins the super_block, so it can run while put_super
# frees the mount's state and releases the claim. ferrofs serialises the two
# with its holder lock (Documentation/design.md, "Lifetimes"): a callback
# either finishes before put_super takes the state away, or finds no holder.
# Each round mounts a filesystem with data, then umounts it while another
# process injects memory failures into its blocks (corrupt-pfn), and, every
# third round, while the pmem device is being unbound. Run it on the debug
# kernel (KASAN): a use-after-free of the super_block or the FsInfo is a
# KASAN report, which fails the run; on any kernel, a hang, an oops or a
# failed umount fails it.
. "$FERROFS_SRC/tests/guest/lib.sh"
rounds=${FERROFS_T_RACE_ROUNDS:-8}
dbgfs=/sys/kernel/debug/ferrofs
dev=$(basename "$(readlink -f /sys/block/pmem0/device)")
drv=$(readlink -f "/sys/block/pmem0/device/driver")
hits=0; removals=0; raced=0
for r in $(seq "$rounds"); do
  fresh_fs
  # eight files of 64 KiB; the pfn of each one's first data block
  pfns=$(python3 -c "
import os
from fsutil import fiemap
base = int(open('$dbgfs/pmem0/base_pfn').read(), 0)
for i in range(8):
    with open('$MNT/f%d' % i, 'wb') as f:
        f.write(os.urandom(65536)); os.fsync(f.fileno())
        print(base + fiemap(f.fileno())[0][1] // 4096)")
  [ -n "$pfns" ] || fail "round $r: no data blocks found"
  dmesg_mark
  # the injector: one failure per data extent, as fast as it can
  ( for p in $pfns; do echo "$p" > /sys/kernel/debug/hwpoison/corrupt-pfn 2>/dev/null || true; done ) &
  inj=$!
  remover=
  if [ $((r % 3)) = 0 ]; then
    ( echo "$dev" > "$drv/unbind" ) &
    remover=$!
    removals=$((removals + 1))
  fi
  # umount while both run; it must work whichever wins
  umount "$MNT" || fail "round $r: umount failed"
  wait "$inj" || true
  if [ -n "$remover" ]; then
    wait "$remover" || fail "round $r: unbinding $dev failed"
    echo "$dev" > "$drv/bind" || fail "round $r: rebinding $dev failed"
    for i in $(seq 50); do [ -b /dev/pmem0 ] && break; sleep 0.1; done
    [ -b /dev/pmem0 ] || fail "round $r: /dev/pmem0 did not come back"
  fi
  n=$(kmsg | tail -n +"$(( DMESG_MARK + 1 ))" | grep -c "ferrofs (pmem0): memory failure in" || true)
  hits=$((hits + n))
  # some failures reached the mounted filesystem, some came after umount
  [ "$n" -lt "$(echo "$pfns" | wc -l)" ] && raced=$((raced + 1))
  mounted=$(grep -c " $MNT ferrofs " /proc/mounts || true)
  expect_eq "round $r: mounted after umount" "$mounted" 0
done
# the filesystem still mounts and checks clean afterwards (a fresh one: the
# injected failures quarantined blocks of the last one)
fresh_fs
echo ok > "$MNT/after"
umount "$MNT"
fsck_clean
echo "race-summary: rounds=$rounds removals=$removals failures_handled=$hits rounds_where_umount_won_some=$raced"
[ "$hits" -gt 0 ] || fail "no memory failure reached a mounted ferrofs: the race was not exercised"
[ "$raced" -gt 0 ] || fail "umount never overlapped the injections: the race was not exercised"
