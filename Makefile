# ferrofs top-level Makefile.
#   make [KDIR=DIR]   build ferrofs.ko and the tools (into out/bin). KDIR is the
#                     kernel build tree, as for any out-of-tree module
#                     (e.g. KDIR=/lib/modules/$(uname -r)/build). Without KDIR
#                     (or FERROFS_KERNEL), our cached 6.12 test kernel from
#                     scripts/build-kernel: the conventional default, the
#                     running kernel, has no CONFIG_RUST on Debian 12 and most
#                     distributions, so the module could not build against it.
#                     scripts/check-kdir checks the tree first (CONFIG_RUST,
#                     FS_DAX, ZONE_DEVICE, MEMORY_FAILURE, Rust metadata, the
#                     exact rustc) and stops with one line naming the problem.
#   make install      the module through the kernel's modules_install
#                     (INSTALL_MOD_PATH, default $(DESTDIR)) and depmod;
#                     mkfs.ferrofs, fsck.ferrofs, ferrofs-db, ferrofs-defrag
#                     into $(SBINDIR),
#                     ferrofs-du into $(BINDIR), man pages into $(MANDIR);
#                     DESTDIR stages, PREFIX (default /usr) moves. Builds
#                     nothing: run `make` first (as your user, then
#                     `sudo make install`). `make uninstall` removes the same.
#   make vm           a shell in the test VM, module installed, NVDIMMs ready
#                     (VM_ARGS="--pmem 2" etc. go to scripts/vm-run)
#   make kernel-package  Debian .debs of a 6.12 kernel for real machines with
#                     pmem: scripts/kernel-package, into out/kernel-package/
#   make demo         boot a VM with an emulated NVDIMM and show ferrofs at work
#   make test         every test: host checks, cargo test, the in-guest suites
#   make bench        ferrofs vs XFS vs ext4 on the bench kernel (not a test)
#   make stress       the long robustness run (crash, corrupted images, faults,
#                     ENOSPC, fsstress, hostile ioctls) on the KASAN debug kernel
#   make setup        install what a fresh Debian 12 machine lacks
RUSTC ?= /usr/bin/rustc
CARGO ?= cargo
export RUSTC_FOR_KERNEL := $(RUSTC)

PREFIX ?= /usr
SBINDIR ?= $(PREFIX)/sbin
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
INSTALL_MOD_PATH ?= $(DESTDIR)
DEPMOD ?= depmod
VM_ARGS ?=

SBIN_TOOLS := mkfs.ferrofs fsck.ferrofs ferrofs-db ferrofs-defrag
BIN_TOOLS := ferrofs-du
MAN1 := man/ferrofs-du.1
MAN5 := man/ferrofs.5
MAN8 := man/mkfs.ferrofs.8 man/fsck.ferrofs.8 man/ferrofs-db.8 man/ferrofs-defrag.8

# Shell prologue of the recipes that need the kernel tree: sets $kdir (KDIR,
# else FERROFS_KERNEL, else for install/uninstall the tree the module was
# last built against, else our cached test kernel) and $llvm (LLVM=1 when
# that tree was built with clang, as the module's C shim must be too).
define kdir_sh
kdir='$(or $(KDIR),$(FERROFS_KERNEL))'; \
[ -n "$$kdir" ] || [ "$(1)" != installed ] || kdir=$$(cat out/module-kdir 2>/dev/null); \
[ -n "$$kdir" ] || kdir=$$(scripts/build-kernel | tail -1) || exit 1; \
llvm=$$(grep -qs '^CONFIG_CC_IS_CLANG=y' "$$kdir/include/config/auto.conf" "$$kdir/.config" && echo LLVM=1)
endef

.PHONY: all setup kernel module tools demo test clean bench stress xfstests \
	install install-module install-tools install-man uninstall vm kernel-package bench-selftest
all: module tools

setup:
	scripts/setup

kernel:
	scripts/build-kernel >/dev/null

module:
	@$(call kdir_sh,build); \
	scripts/check-kdir --rustc $(RUSTC) "$$kdir" && \
	$(MAKE) -C "$$kdir" M=$(CURDIR) $$llvm RUSTC=$(RUSTC) modules && \
	mkdir -p out && echo "$$kdir" > out/module-kdir

tools:
	env -u RUSTC $(CARGO) build --release -q -p ferrofs-tools
	@mkdir -p out/bin
	@for t in mkfs fsck; do install -m 755 target/release/$$t-ferrofs out/bin/$$t.ferrofs; done
	@for t in target/release/ferrofs-*; do [ -x "$$t" ] && [ -f "$$t" ] && install -m 755 "$$t" out/bin/; done; true

install: install-module install-tools install-man

# modules_install runs depmod itself, except for trees without System.map
# (headers packages): then we run it
install-module:
	@[ -f ferrofs.ko ] || { echo "install: no ferrofs.ko here: run make first" >&2; exit 1; }
	@$(call kdir_sh,installed); \
	krel=$$(cat "$$kdir/include/config/kernel.release") && \
	moddir='$(INSTALL_MOD_PATH)'/lib/modules/$$krel && \
	$(MAKE) -C "$$kdir" M=$(CURDIR) $$llvm RUSTC=$(RUSTC) INSTALL_MOD_PATH='$(INSTALL_MOD_PATH)' modules_install && \
	{ grep -qs '/ferrofs.ko:' "$$moddir/modules.dep" || \
	  $(DEPMOD) -a $(if $(INSTALL_MOD_PATH),-b '$(INSTALL_MOD_PATH)') "$$krel"; } && \
	echo "install: ferrofs.ko for $$krel in $$moddir; modprobe ferrofs loads it"

install-tools:
	@for t in $(SBIN_TOOLS) $(BIN_TOOLS); do \
	  [ -x out/bin/$$t ] || { echo "install: no out/bin/$$t: run make first" >&2; exit 1; }; done
	install -d '$(DESTDIR)$(SBINDIR)' '$(DESTDIR)$(BINDIR)'
	install -m 755 $(addprefix out/bin/,$(SBIN_TOOLS)) '$(DESTDIR)$(SBINDIR)/'
	install -m 755 $(addprefix out/bin/,$(BIN_TOOLS)) '$(DESTDIR)$(BINDIR)/'

install-man:
	install -d '$(DESTDIR)$(MANDIR)/man1' '$(DESTDIR)$(MANDIR)/man5' '$(DESTDIR)$(MANDIR)/man8'
	install -m 644 $(MAN1) '$(DESTDIR)$(MANDIR)/man1/'
	install -m 644 $(MAN5) '$(DESTDIR)$(MANDIR)/man5/'
	install -m 644 $(MAN8) '$(DESTDIR)$(MANDIR)/man8/'

uninstall:
	rm -f $(foreach t,$(SBIN_TOOLS),'$(DESTDIR)$(SBINDIR)/$(t)') $(foreach t,$(BIN_TOOLS),'$(DESTDIR)$(BINDIR)/$(t)')
	rm -f $(foreach m,$(MAN1),'$(DESTDIR)$(MANDIR)/man1/$(notdir $(m))') \
	      $(foreach m,$(MAN5),'$(DESTDIR)$(MANDIR)/man5/$(notdir $(m))') \
	      $(foreach m,$(MAN8),'$(DESTDIR)$(MANDIR)/man8/$(notdir $(m))')
	@$(call kdir_sh,installed); \
	krel=$$(cat "$$kdir/include/config/kernel.release") && \
	moddir='$(INSTALL_MOD_PATH)'/lib/modules/$$krel && \
	rm -fv "$$moddir"/*/ferrofs.ko "$$moddir"/*/ferrofs.ko.* && \
	if [ -d "$$moddir" ]; then $(DEPMOD) -a $(if $(INSTALL_MOD_PATH),-b '$(INSTALL_MOD_PATH)') "$$krel"; fi

# make vm [VM_ARGS="--pmem 2 --pmem-size 2048"]: an interactive shell in the
# test VM (exit or Ctrl-D powers it off); reads commands from a pipe as well
vm: all
	FERROFS_KERNEL='$(or $(KDIR),$(FERROFS_KERNEL))' scripts/vm-run $(VM_ARGS) --shell

# make kernel-package [KPKG_ARGS=--config-only]: see scripts/kernel-package
kernel-package:
	scripts/kernel-package $(KPKG_ARGS)

demo: setup all
	scripts/demo

test: setup all
	scripts/test

clean:
	@kdir='$(or $(KDIR),$(FERROFS_KERNEL))'; [ -n "$$kdir" ] || kdir=$$(cat out/module-kdir 2>/dev/null) || \
	kdir=$$(ls -d $${FERROFS_CACHE:-$$HOME/.cache/ferrofs}/kernel-*/ 2>/dev/null | grep -v partial | tail -1); \
	[ -z "$$kdir" ] || ! [ -d "$$kdir" ] || $(MAKE) -C "$$kdir" M=$(CURDIR) LLVM=1 RUSTC=$(RUSTC) clean
	rm -rf out src/bindings_generated.rs
	$(CARGO) clean

# make bench [FULL=1] [SEED=N] [REPS=N] [THREADS="1 2"] [PARTS="par ..."]: ferrofs vs XFS vs ext4
# on one emulated NVDIMM, on the bench kernel (FERROFS_KERNEL_FLAVOUR=bench,
# cached) with a module built against it in out/bench/module/ (see
# Documentation/benchmarks.md); results in out/bench/, table in README.md.
# Not part of `make test`.
bench: tools
	scripts/bench $(if $(filter 1,$(FULL)),--full)

# the host unit tests of the benchmark verdict (scripts/bench runs them too)
bench-selftest:
	/usr/bin/python3 -m unittest -v bench/test_verdict.py

# make xfstests XFSTESTS=/path/to/built/xfstests [GROUPS="quick clone"]
#   [TESTS="generic/001 ..."] [FSTYP="ferrofs xfs ext4"] [RESUME=RUN_DIR]
#   [XFSTESTS_BUDGET=SECONDS] [XFSTESTS_MAX=COUNT] [XFSTESTS_SMP=1]
#   [XFSTESTS_XFSPROGS=PREFIX]: see scripts/xfstests and Documentation/xfstests.md
GROUPS ?= quick
FSTYP ?= ferrofs
xfstests: module tools
	@[ -n "$(XFSTESTS)" ] || { echo "usage: make xfstests XFSTESTS=/path/to/xfstests [GROUPS=...] [TESTS=...] [FSTYP=...]"; exit 2; }
	scripts/xfstests -g "$(GROUPS)" -t "$(TESTS)" $(if $(RESUME),-r "$(RESUME)") "$(XFSTESTS)" $(FSTYP)

# make stress [QUICK=1]: see Documentation/robustness.md; builds the debug
# kernel (FERROFS_KERNEL_FLAVOUR=debug, cached) and a module against it in
# out/debug/module/; prints one "stress:" line per part and a total
stress: setup all
	scripts/stress $(if $(filter 1,$(QUICK)),--quick)
