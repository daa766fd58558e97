# scripts/vm-run and a crash of qemu itself (qemu 7.2's TCG now and then
# dies of SIGSEGV early in a boot): a crash before the guest started its
# command boots again, saying so, and the run's verdict is the command's; with
# FERROFS_VM_QEMU_TRIES=1, or a crash after the command started, the run
# fails, naming qemu's crash. qemu-system-x86_64 is a wrapper on PATH that
# kills itself with SIGSEGV the first time it is started, either at once
# (mid-boot) or once the guest's command is running, and is the real qemu
# otherwise. Two boots in all.
# shellcheck source=tests/host/lib.sh
. "$(dirname "$0")/../host/lib.sh"
cd "$here"

real=$(type -P qemu-system-x86_64) || { not_ok "no qemu-system-x86_64 on PATH"; finish; exit; }
mkdir -p "$scratch/bin"
cat > "$scratch/bin/qemu-system-x86_64" <<EOF
#!/usr/bin/env bash
# FAKEQEMU_MODE: boot (crash at once) or run (crash once the command runs)
n=\$(cat "\$FAKEQEMU_COUNT" 2>/dev/null || echo 0)
echo \$((n + 1)) > "\$FAKEQEMU_COUNT"
[ "\$n" = 0 ] || exec "$real" "\$@"
if [ "\$FAKEQEMU_MODE" = boot ]; then
  echo "fake qemu: SIGSEGV in boot"
  kill -SEGV \$\$
fi
log=
for a in "\$@"; do case \$a in *logfile=*) log=\${a##*logfile=}; log=\${log%%,*} ;; esac; done
me=\$\$
( while ! grep -qs '^ferrofs-init: running' "\$log"; do sleep 0.5; done
  sleep 2; kill -SEGV "\$me" ) </dev/null >/dev/null 2>&1 &
exec "$real" "\$@"
EOF
chmod +x "$scratch/bin/qemu-system-x86_64"
mkdir -p out/vm

# 1. crash in the boot: a second boot runs the command
run=$(mktemp -d "$here/out/vm/qemucrash.XXXXXX")
trap 'rm -rf "$scratch" "$run"' EXIT
out=$(PATH="$scratch/bin:$PATH" FAKEQEMU_MODE=boot FAKEQEMU_COUNT="$scratch/n1" \
  scripts/vm-run --rundir "$run" --timeout 600 -- sh -c ': > "$FERROFS_RUNDIR/ran"' 2>&1); rc=$?
check "a qemu SIGSEGV in the boot: booted again, the command's status 0 (got $rc)" [ "$rc" = 0 ]
check "vm-run says qemu crashed in the boot and boots again" \
  grep -q "qemu crashed (exit 139, SIGSEGV) while the guest was booting, before its command started.*booting again, 2 of 2" <<< "$out"
check "qemu was started twice ($(cat "$scratch/n1" 2>/dev/null))" [ "$(cat "$scratch/n1" 2>/dev/null)" = 2 ]
check "the command ran once, in the second boot" [ -e "$run/ran" ]

# 2. FERROFS_VM_QEMU_TRIES=1: no second boot, the run fails naming qemu
rm -rf "$run"; mkdir -p "$run"
out=$(PATH="$scratch/bin:$PATH" FAKEQEMU_MODE=boot FAKEQEMU_COUNT="$scratch/n2" FERROFS_VM_QEMU_TRIES=1 \
  scripts/vm-run --rundir "$run" --timeout 600 -- sh -c ': > "$FERROFS_RUNDIR/ran"' 2>&1); rc=$?
check "FERROFS_VM_QEMU_TRIES=1: the crash fails the run (exit 1, got $rc)" [ "$rc" = 1 ]
check "vm-run names qemu's own crash" grep -q "qemu itself crashed (exit 139, SIGSEGV)" <<< "$out"
check "qemu was started once, the command never ran" \
  bash -c '[ "$(cat "$1")" = 1 ] && [ ! -e "$2/ran" ]' _ "$scratch/n2" "$run"

# 3. crash after the command started: not retried, the run fails
rm -rf "$run"; mkdir -p "$run"
out=$(PATH="$scratch/bin:$PATH" FAKEQEMU_MODE=run FAKEQEMU_COUNT="$scratch/n3" \
  scripts/vm-run --rundir "$run" --timeout 600 -- sh -c ': > "$FERROFS_RUNDIR/ran"; sleep 120' 2>&1); rc=$?
check "a qemu SIGSEGV while the command runs fails the run (exit 1, got $rc)" [ "$rc" = 1 ]
check "vm-run names qemu's own crash, and does not boot again" \
  bash -c 'grep -q "qemu itself crashed (exit 139, SIGSEGV)" <<< "$1" && ! grep -q "booting again" <<< "$1" && [ "$(cat "$2")" = 1 ]' _ "$out" "$scratch/n3"
check "the command had started" [ -e "$run/ran" ]

out=$(FERROFS_VM_QEMU_TRIES=0 scripts/vm-run --timeout 60 -- true 2>&1); rc=$?
check "FERROFS_VM_QEMU_TRIES=0 is refused (exit 2, got $rc)" \
  bash -c '[ "$1" = 2 ] && grep -q "FERROFS_VM_QEMU_TRIES must be a number of boots" <<< "$2"' _ "$rc" "$out"
finish
