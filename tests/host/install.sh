# make install DESTDIR=... stages the module (modules_install + depmod), the
# tools and the man pages at the conventional paths, and nothing else;
# PREFIX and INSTALL_MOD_PATH move them; make uninstall removes them again.
# Needs `make` first (make test runs it).
# shellcheck source=tests/host/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$here"
mk() { env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make --no-print-directory "$@"; }

if [ ! -f ferrofs.ko ] || [ ! -f out/module-kdir ] || [ ! -x out/bin/mkfs.ferrofs ]; then
  not_ok "ferrofs.ko, out/module-kdir or out/bin missing: run make first"; finish; exit
fi
krel=$(cat "$(cat out/module-kdir)/include/config/kernel.release")
stage=$scratch/stage
out=$(mk install DESTDIR="$stage" 2>&1); rc=$?
check "make install DESTDIR=stage succeeds${out:+ (last line: $(printf '%s\n' "$out" | tail -1))}" [ "$rc" = 0 ]

for t in usr/sbin/mkfs.ferrofs usr/sbin/fsck.ferrofs usr/sbin/ferrofs-db usr/sbin/ferrofs-defrag usr/bin/ferrofs-du; do
  check "$t: installed, executable, the built binary" \
    bash -c '[ -x "$1/$2" ] && cmp -s "$1/$2" "out/bin/$(basename "$2")"' _ "$stage" "$t"
done
for m in man1/ferrofs-du.1 man5/ferrofs.5 man8/mkfs.ferrofs.8 man8/fsck.ferrofs.8 man8/ferrofs-db.8 man8/ferrofs-defrag.8; do
  check "usr/share/man/$m: installed mode 644" \
    bash -c '[ "$(stat -c %a "$1")" = 644 ] && cmp -s "$1" "man/$(basename "$1")"' _ "$stage/usr/share/man/$m"
done
check "man -M finds the staged ferrofs(5) and mkfs.ferrofs(8)" \
  bash -c '[ "$(man -M "$1" -w 5 ferrofs)" = "$1/man5/ferrofs.5" ] &&
           [ "$(man -M "$1" -w mkfs.ferrofs)" = "$1/man8/mkfs.ferrofs.8" ]' _ "$stage/usr/share/man"

mod=$stage/lib/modules/$krel/updates/ferrofs.ko
check "lib/modules/$krel/updates/ferrofs.ko installed by modules_install" cmp -s "$mod" ferrofs.ko
check "depmod ran: modules.dep lists it" grep -qx 'updates/ferrofs.ko:' "$stage/lib/modules/$krel/modules.dep"
check "depmod ran: modules.alias maps fs-ferrofs (mount -t ferrofs autoloads)" \
  grep -qx 'alias fs-ferrofs ferrofs' "$stage/lib/modules/$krel/modules.alias"
check "modprobe resolves ferrofs in the staged tree" \
  bash -c 'modprobe -d "$1" -S "$2" --show-depends ferrofs | grep -qx "insmod $3 *"' _ "$stage" "$krel" "$mod"

# nothing but these paths
extra=$(cd "$stage" && find . -type f | sed 's|^\./||' | grep -Ev \
  "^(usr/s?bin/(mkfs.ferrofs|fsck.ferrofs|ferrofs-db|ferrofs-defrag|ferrofs-du)|usr/share/man/man[158]/[a-z.-]+\.[158]|lib/modules/$krel/(updates/ferrofs.ko|modules\.[a-z.]+))$")
check "no other file staged${extra:+ (found: $extra)}" [ -z "$extra" ]

# PREFIX and INSTALL_MOD_PATH
out=$(mk install DESTDIR="$scratch/p" PREFIX=/usr/local INSTALL_MOD_PATH="$scratch/m" 2>&1); rc=$?
check "PREFIX=/usr/local puts tools and pages under usr/local" \
  bash -c '[ "$1" = 0 ] && [ -x "$2/usr/local/sbin/mkfs.ferrofs" ] && [ -x "$2/usr/local/bin/ferrofs-du" ] &&
           [ -f "$2/usr/local/share/man/man5/ferrofs.5" ] && [ ! -e "$2/usr/sbin" ]' _ "$rc" "$scratch/p"
check "INSTALL_MOD_PATH puts the module there, not under DESTDIR" \
  bash -c '[ -f "$1/lib/modules/$3/updates/ferrofs.ko" ] && [ ! -e "$2/lib" ]' _ "$scratch/m" "$scratch/p" "$krel"

# uninstall
out=$(mk uninstall DESTDIR="$stage" 2>&1); rc=$?
left=$(cd "$stage" && find . -type f | sed 's|^\./||' | grep -v "^lib/modules/$krel/modules\.")
check "make uninstall DESTDIR=stage removes tools, pages and module${left:+ (left: $left)}" \
  bash -c '[ "$1" = 0 ] && [ -z "$2" ]' _ "$rc" "$left"
check "depmod after uninstall: modules.dep no longer lists ferrofs" \
  bash -c '! grep -q ferrofs "$1/modules.dep"' _ "$stage/lib/modules/$krel"

# install builds nothing: without the built files it stops with a reason
out=$(mk install-tools DESTDIR="$scratch/x" -C "$scratch" -f "$here/Makefile" 2>&1); rc=$?
check "install without a build stops with 'run make first'" \
  bash -c '[ "$1" != 0 ] && printf "%s\n" "$2" | grep -q "run make first"' _ "$rc" "$out"
finish
