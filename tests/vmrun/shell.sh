# make vm: the interactive shell, driven through a pipe as in the README:
# it comes up with a hint line, the module loads with modprobe, mkfs and a
# DAX mount work, bash has job control on the console, and `exit` powers
# the VM off with status 0. One boot. (Ctrl-D and Ctrl-C are tested on a
# pty, tty.sh: typed ahead through a pipe, a control character lands in
# canonical or raw mode depending on timing, as it would for a user typing
# ahead.)
# shellcheck source=tests/host/lib.sh
. "$(dirname "$0")/../host/lib.sh"
cd "$here"

input='modprobe ferrofs; echo "modprobe: $? $(grep -c "^ferrofs " /proc/modules) $(modinfo -F alias ferrofs)"
mkfs.ferrofs -f /dev/pmem0 && mount -t ferrofs -o dax /dev/pmem0 /mnt/test && echo hello > /mnt/test/f && cat /mnt/test/f
echo "mount: $(grep " /mnt/test " /proc/mounts)"
echo "tty: $(tty) flags: $-"
exit
'
out=$(printf "$input" | env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS timeout 600 \
  make --no-print-directory vm VM_ARGS="--timeout 400" 2>&1); rc=$?
# (terminal escapes, should bash emit any, removed)
printf '%s\n' "$out" | sed -E 's/\x1b\[[0-9;?]*[A-Za-z]//g' > "$scratch/out"
has() { grep -qE -- "$1" "$scratch/out"; }
check "make vm with piped commands ending in exit: status 0 (got $rc)" [ "$rc" = 0 ]
check "the hint line says how to mkfs and mount" has '^  try: mkfs\.ferrofs /dev/pmem0 && mount -t ferrofs -o dax /dev/pmem0 /mnt/test'
check "the hint line names the module and the pmem devices" has '^ferrofs VM shell: ferrofs\.ko installed .* fsdax pmem: pmem0 *$'
check "mkfs, mount -o dax, write and read back: 'hello'" has '^hello$'
check "modprobe ferrofs loads the installed module (alias fs-ferrofs)" has '^modprobe: 0 1 fs-ferrofs$'
check "the mount is ferrofs with dax=always" has '^mount: /dev/pmem0 /mnt/test ferrofs [^ ]*dax=always'
check "the shell is interactive with job control on the serial console" has '^tty: /dev/ttyS0 flags: [a-zA-Z]*i[a-zA-Z]*$'
check "bash's job control flag is on" bash -c 'grep "^tty: " "$1" | grep -q "flags: [a-zA-Z]*m"' _ "$scratch/out"
check "exit powers the VM off through init (command exited 0)" has '^ferrofs-init: command exited 0$'
if [ "$n_fail" != 0 ]; then echo "--- output tail"; tail -40 "$scratch/out"; fi
finish
