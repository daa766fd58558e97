# scripts/vm-run kills a guest that has not started its command
# FERROFS_VM_BOOT_TIMEOUT seconds after boot began (a boot that hangs, e.g.
# with its virtio interrupts unrouted, would otherwise sit until --timeout):
# a limit no boot can meet fires, with exit 124, a message naming the cause
# and the run directory kept; the command never ran. One (cut-short) boot.
# shellcheck source=tests/host/lib.sh
. "$(dirname "$0")/../host/lib.sh"
cd "$here"

mkdir -p out/vm
run=$(mktemp -d "$here/out/vm/bootwatch.XXXXXX")
trap 'rm -rf "$scratch" "$run"' EXIT
out=$(FERROFS_VM_BOOT_TIMEOUT=1 scripts/vm-run --rundir "$run" --timeout 600 -- sh -c ': > "$FERROFS_RUNDIR/ran"' 2>&1); rc=$?
check "a boot limit of 1 s ends the run with exit 124 (got $rc)" [ "$rc" = 124 ]
check "vm-run says the guest had not started its command in time" \
  grep -q "had not started its command 1s after boot began (FERROFS_VM_BOOT_TIMEOUT)" <<< "$out"
check "the command did not run" [ ! -e "$run/ran" ]
check "no qemu of this run is left" bash -c '! pgrep -f "logfile=$1/console.log" >/dev/null' _ "$run"
out=$(FERROFS_VM_BOOT_TIMEOUT=soon scripts/vm-run --timeout 60 -- true 2>&1); rc=$?
check "a limit that is not a number of seconds is refused (exit 2, got $rc)" \
  bash -c '[ "$1" = 2 ] && grep -q "FERROFS_VM_BOOT_TIMEOUT must be a number of seconds" <<< "$2"' _ "$rc" "$out"
finish
