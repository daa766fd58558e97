# ferrofs top-level Makefile.
#   make            build ferrofs.ko (against our cached test kernel) and the tools
#   make demo       boot a VM with an emulated NVDIMM and show ferrofs at work
#   make test       every test: cargo test + the in-guest suites
#   make bench      ferrofs vs XFS vs ext4 on the bench kernel (not a test)
#   make stress     the long robustness run (crash, corrupted images, faults,
#                   ENOSPC, fsstress, hostile ioctls) on the KASAN debug kernel
#   make setup      install what a fresh Debian 12 machine lacks
RUSTC ?= /usr/bin/rustc
CARGO ?= cargo
export RUSTC_FOR_KERNEL := $(RUSTC)

.PHONY: all setup kernel module tools demo test clean bench bench-selftest stress xfstests
all: module tools

setup:
	scripts/setup

kernel:
	scripts/build-kernel >/dev/null

module:
	@kdir=$${FERROFS_KERNEL:-$$(scripts/build-kernel | tail -1)} && \
	$(MAKE) -C "$$kdir" M=$(CURDIR) LLVM=1 RUSTC=$(RUSTC) modules

tools:
	env -u RUSTC $(CARGO) build --release -q -p ferrofs-tools
	@mkdir -p out/bin
	@for t in mkfs fsck; do install -m 755 target/release/$$t-ferrofs out/bin/$$t.ferrofs; done
	@for t in target/release/ferrofs-*; do [ -x "$$t" ] && [ -f "$$t" ] && install -m 755 "$$t" out/bin/; done; true

demo: setup all
	scripts/demo

test: setup all
	scripts/test

clean:
	@kdir=$$(ls -d $${FERROFS_CACHE:-$$HOME/.cache/ferrofs}/kernel-*/ 2>/dev/null | grep -v partial | tail -1); \
	[ -z "$$kdir" ] || $(MAKE) -C "$$kdir" M=$(CURDIR) LLVM=1 RUSTC=$(RUSTC) clean
	rm -rf out src/bindings_generated.rs
	$(CARGO) clean

# make bench [FULL=1] [SEED=N] [REPS=N] [THREADS=1,2]: ferrofs vs XFS vs ext4
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
#   [TESTS="generic/001 ..."] [FSTYP="ferrofs xfs ext4"]: see scripts/xfstests
GROUPS ?= quick
FSTYP ?= ferrofs
xfstests: module tools
	@[ -n "$(XFSTESTS)" ] || { echo "usage: make xfstests XFSTESTS=/path/to/xfstests [GROUPS=...] [TESTS=...] [FSTYP=...]"; exit 2; }
	scripts/xfstests -g "$(GROUPS)" -t "$(TESTS)" "$(XFSTESTS)" $(FSTYP)

# make stress [QUICK=1]: see Documentation/robustness.md; builds the debug
# kernel (FERROFS_KERNEL_FLAVOUR=debug, cached) and a module against it in
# out/debug/module/; prints one "stress:" line per part and a total
stress: setup all
	scripts/stress $(if $(filter 1,$(QUICK)),--quick)
