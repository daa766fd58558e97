# scripts/check-kdir and `make KDIR=...` against fake kernel trees: a tree
# that cannot take ferrofs.ko stops the build at once with one line naming
# the reason (missing option, missing Rust metadata, rustc mismatch).
# shellcheck source=tests/host/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$here"

# a rustc that only knows its version
rustc_fake=$scratch/rustc
printf '#!/bin/sh\necho "rustc 1.96.0 (0123abcde 2026-05-25) (fake)"\n' > "$rustc_fake"
chmod +x "$rustc_fake"
good_opts='CONFIG_MODULES=y
CONFIG_RUST=y
CONFIG_FS_DAX=y
CONFIG_ZONE_DEVICE=y
CONFIG_MEMORY_FAILURE=y
CONFIG_CC_IS_CLANG=y'

# mktree NAME CONFIG-TEXT [rmeta]: a fake build tree with that .config
mktree() {
  local t=$scratch/$1
  mkdir -p "$t/include/config"
  printf '%s\n' "$2" > "$t/.config"
  echo "6.12.0-fake" > "$t/include/config/kernel.release"
  if [ "${3:-}" = rmeta ]; then
    mkdir -p "$t/rust"; touch "$t/rust/libcore.rmeta" "$t/rust/libkernel.rmeta" "$t/rust/libmacros.so"
  fi
  echo "$t"
}

# kcheck TREE: runs check-kdir with the fake rustc; sets $out and $rc
kcheck() { out=$(scripts/check-kdir --rustc "$rustc_fake" "$1" 2>&1); rc=$?; }
one_line() { [ "$(printf '%s\n' "$out" | wc -l)" = 1 ]; }
says() { printf '%s\n' "$out" | grep -q -- "$1"; }

# 1. no CONFIG_RUST, through `make KDIR=...` as a user runs it
norust=$(mktree norust "$(printf '%s\n' "$good_opts" | grep -v '^CONFIG_RUST=')
# CONFIG_RUST is not set")
start=$(date +%s)
out=$(env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make --no-print-directory KDIR="$norust" 2>&1); rc=$?
secs=$(( $(date +%s) - start ))
mine=$(printf '%s\n' "$out" | grep -v '^make\(\[[0-9]*\]\)\?: \*\*\*')
check "make KDIR=<tree without CONFIG_RUST> fails" [ "$rc" != 0 ]
check "it prints one line besides make's own (got: $mine)" [ "$(printf '%s\n' "$mine" | wc -l)" = 1 ]
check "that line names CONFIG_RUST and the tree" \
  bash -c 'printf "%s\n" "$1" | grep -q "^check-kdir: $2: CONFIG_RUST not set"' _ "$mine" "$norust"
check "it stops before compiling anything (no rustc, cargo or kbuild output)" \
  bash -c '! printf "%s\n" "$1" | grep -qiE "cargo|rustc |error\[|  (CC|RUSTC|LD) "' _ "$out"
check "it stops at once (${secs}s)" [ "$secs" -le 10 ]

# 2. several options missing: all of them named on the one line
nodax=$(mktree nodax "$(printf '%s\n' "$good_opts" | grep -v 'FS_DAX\|MEMORY_FAILURE')")
kcheck "$nodax"
check "missing FS_DAX and MEMORY_FAILURE: exit 1, one line naming both" \
  bash -c '[ "$1" = 1 ] && [ "$(printf "%s\n" "$2" | wc -l)" = 1 ] &&
           printf "%s\n" "$2" | grep -q "CONFIG_FS_DAX CONFIG_MEMORY_FAILURE not set"' _ "$rc" "$out"
nozd=$(mktree nozd "$(printf '%s\n' "$good_opts" | sed 's/^CONFIG_ZONE_DEVICE=y/# CONFIG_ZONE_DEVICE is not set/')")
kcheck "$nozd"
check "missing ZONE_DEVICE is named" says "CONFIG_ZONE_DEVICE not set"
# include/config/auto.conf (what kbuild reads) wins over .config
auto=$(mktree auto "$good_opts" rmeta)
printf '%s\n' "$good_opts" | grep -v '^CONFIG_RUST=' > "$auto/include/config/auto.conf"
kcheck "$auto"
check "include/config/auto.conf is the config read when present" says "CONFIG_RUST not set in include/config/auto.conf"

# 3. options set, no Rust metadata (a headers package without rust/)
nometa=$(mktree nometa "$good_opts
CONFIG_RUSTC_VERSION_TEXT=\"rustc 1.96.0 (0123abcde 2026-05-25) (fake)\"")
kcheck "$nometa"
check "no rust/*.rmeta: exit 1, one line naming the Rust metadata" \
  bash -c '[ "$1" = 1 ] && [ "$(printf "%s\n" "$2" | wc -l)" = 1 ] && printf "%s\n" "$2" | grep -q "no Rust metadata (rust/libcore.rmeta rust/libkernel.rmeta rust/libmacros.so missing)"' _ "$rc" "$out"

# 4. another rustc than the tree's
other=$(mktree other "$good_opts
CONFIG_RUSTC_VERSION_TEXT=\"rustc 1.85.0 (4d91de4e4 2025-02-17) (built from a source tarball)\"" rmeta)
kcheck "$other"
check "rustc mismatch: exit 1, one line with both versions" \
  bash -c '[ "$1" = 1 ] && [ "$(printf "%s\n" "$2" | wc -l)" = 1 ] &&
           printf "%s\n" "$2" | grep -q "rustc mismatch: the tree was built with .rustc 1.85.0 (4d91de4e4 2025-02-17) (built from a source tarball). but .*rustc is .rustc 1.96.0 (0123abcde 2026-05-25) (fake)."' _ "$rc" "$out"
out=$(env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make --no-print-directory KDIR="$other" RUSTC="$rustc_fake" module 2>&1); rc=$?
check "make KDIR=<tree of another rustc> RUSTC=... stops with the mismatch" \
  bash -c '[ "$1" != 0 ] && printf "%s\n" "$2" | grep -q "^check-kdir: .*rustc mismatch"' _ "$rc" "$out"

# 5. a tree that fits passes, by its version text or (older trees) number
fits=$(mktree fits "$good_opts
CONFIG_RUSTC_VERSION_TEXT=\"rustc 1.96.0 (0123abcde 2026-05-25) (fake)\"" rmeta)
kcheck "$fits"
check "a fitting tree passes (exit 0, one ok line)" bash -c '[ "$1" = 0 ] && printf "%s\n" "$2" | grep -q "ok$"' _ "$rc" "$out"
num=$(mktree num "$good_opts
CONFIG_RUSTC_VERSION=109600" rmeta)
kcheck "$num"
check "CONFIG_RUSTC_VERSION=109600 matches rustc 1.96.0" [ "$rc" = 0 ]
numbad=$(mktree numbad "$good_opts
CONFIG_RUSTC_VERSION=108500" rmeta)
kcheck "$numbad"
check "CONFIG_RUSTC_VERSION=108500 does not match rustc 1.96.0" \
  bash -c '[ "$1" = 1 ] && printf "%s\n" "$2" | grep -q "rustc mismatch: the tree was built with rustc version 108500"' _ "$rc" "$out"

# 6. not a tree at all
kcheck "$scratch/nonexistent"
check "a missing KDIR: one line" bash -c '[ "$1" = 1 ] && printf "%s\n" "$2" | grep -q "no such directory"' _ "$rc" "$out"
mkdir -p "$scratch/empty"
kcheck "$scratch/empty"
check "an unconfigured tree: one line" bash -c '[ "$1" = 1 ] && printf "%s\n" "$2" | grep -q "not a configured kernel build tree"' _ "$rc" "$out"

# 7. the tree the module was last built against (our test kernel) passes
#    with the real rustc
if [ -f out/module-kdir ]; then
  real=$(cat out/module-kdir)
  out=$(scripts/check-kdir "$real" 2>&1); rc=$?
  check "the tree ferrofs.ko was built against passes ($out)" [ "$rc" = 0 ]
fi
finish
