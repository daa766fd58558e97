# Shared helpers of the host tests (tests/host/*.sh): each check prints
# "ok - WHAT" or "not ok - WHAT"; tests/host/run counts them.
# shellcheck shell=bash
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
n_fail=0
ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; n_fail=$((n_fail + 1)); }
# check WHAT CMD...: ok when CMD succeeds
check() { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }
# a scratch directory removed at exit
scratch=$(mktemp -d "${TMPDIR:-/tmp}/ferrofs-host.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
finish() { [ "$n_fail" = 0 ]; }
