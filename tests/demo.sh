#!/bin/sh
# Run inside the guest by scripts/demo (make demo).
set -eu
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; sh -c "$*"; }
run "insmod \$FERROFS_KO && grep ferrofs /proc/filesystems"
run "cat /sys/block/pmem0/queue/dax   # 1: pmem0 is an fsdax namespace"
run "mkfs.ferrofs -f /dev/pmem0"
run "mount -t ferrofs -o dax /dev/pmem0 /mnt/test && grep /mnt/test /proc/mounts"
run "df -h /mnt/test"
run "mkdir /mnt/test/dir && echo 'hello, pmem' > /mnt/test/dir/hello && cat /mnt/test/dir/hello"
run "dd if=/dev/urandom of=/mnt/test/data bs=1M count=8 status=none && ls -l /mnt/test/data"
say "python3: store through a MAP_SHARED mapping, read back with read(2)"
python3 - <<'PY'
import mmap, os
fd = os.open("/mnt/test/mapped", os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, 4 << 20)
m = mmap.mmap(fd, 4 << 20)
m[4096:4096 + 22] = b"stored straight to pmem"[:22]
print("read(2) sees:", os.pread(fd, 22, 4096).decode())
pmd = sum(int(l.split()[1]) for l in open("/proc/self/smaps") if l.startswith("FilePmdMapped:"))
m[0] = 1
pmd = sum(int(l.split()[1]) for l in open("/proc/self/smaps") if l.startswith("FilePmdMapped:"))
print("FilePmdMapped (2 MiB DAX mappings):", pmd, "kB")
PY
if cp --reflink=always /mnt/test/data /mnt/test/data.clone 2>/dev/null; then
  run "cmp /mnt/test/data /mnt/test/data.clone && echo reflinked copy is identical"
  run "xfs_io -c 'fiemap -v' /mnt/test/data.clone | head -5"
else
  say "cp --reflink=always: not supported yet on this build"
fi
run "umount /mnt/test && fsck.ferrofs -n /dev/pmem0"
run "mount -t ferrofs -o dax /dev/pmem0 /mnt/test && cat /mnt/test/dir/hello && umount /mnt/test"
run "rmmod ferrofs"
