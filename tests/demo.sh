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
say "python3: stores through a MAP_SHARED mapping go straight to pmem; read(2) sees them"
python3 - <<'PY'
import mmap, os
stat = lambda n: int(open("/sys/kernel/debug/ferrofs/pmem0/" + n).read())
fd = os.open("/mnt/test/mapped", os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, 4 << 20)
pmd0 = stat("pmd_faults")
m = mmap.mmap(fd, 4 << 20)
msg = b"stored straight to pmem"
m[4096:4096 + len(msg)] = msg
m[3 << 20] = 1
print("read(2) sees:", os.pread(fd, len(msg), 4096).decode())
print("2 MiB PMD faults for this mapping:", stat("pmd_faults") - pmd0)
PY
run "cp --reflink=always /mnt/test/data /mnt/test/data.clone && cmp /mnt/test/data /mnt/test/data.clone && echo reflinked copy is identical"
run "xfs_io -c 'fiemap -v' /mnt/test/data.clone | head -4   # flag 0x2000: shared"
run "df --output=used /mnt/test; printf 'copy-on-write' | dd of=/mnt/test/data.clone bs=1 seek=4096 conv=notrunc status=none; df --output=used /mnt/test"
run "cmp /mnt/test/data /mnt/test/data.clone | head -1; ferrofs-du -H /mnt/test"
say "python3: map both files; the reverse map lists who maps each shared page"
python3 - <<'PY'
import mmap, os
maps = [mmap.mmap(os.open(f, os.O_RDONLY), 16384, prot=mmap.PROT_READ) for f in ("/mnt/test/data", "/mnt/test/data.clone")]
for m in maps:
    m[:]
print(open("/sys/kernel/debug/ferrofs/pmem0/rmap").read().rstrip())
PY
run "umount /mnt/test && fsck.ferrofs -n /dev/pmem0"
run "mount -t ferrofs -o dax /dev/pmem0 /mnt/test && cat /mnt/test/dir/hello && umount /mnt/test"
run "rmmod ferrofs"
