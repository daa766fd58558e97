# The xfstests harness's bookkeeping without a VM or an xfstests tree
# (tests/xfstests/selftest.py): run state, outcomes, resumed and retried
# chunks, and the ledgers (quick.tsv and extra.tsv, their rendered blocks).
# Each of its checks is one ok/not ok line here.
# shellcheck source=tests/host/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$here"

out=$(python3 tests/xfstests/selftest.py 2>&1); rc=$?
while IFS= read -r line; do
  case "$line" in
    "ok   "*) ok "xfstests harness: ${line#ok   }" ;;
    "FAIL "*) not_ok "xfstests harness: ${line#FAIL }" ;;
  esac
done <<< "$out"
n=$(grep -cE '^(ok  |FAIL) ' <<< "$out")
check "xfstests harness: selftest.py ran its checks and exited 0 (exit $rc, $n checks)" \
  bash -c '[ "$1" = 0 ] && [ "$2" -gt 20 ]' _ "$rc" "$n"
# prepare-tree says how it is used rather than failing on a path
check "xfstests harness: prepare-tree --help prints its usage and exits 0" \
  bash -c 'o=$(tests/xfstests/prepare-tree --help) && grep -q "^Teach a copy of xfstests about ferrofs: prepare-tree TREE" <<< "$o"'
check "xfstests harness: prepare-tree of a directory that is no xfstests tree says so and exits 1" \
  bash -c 'o=$(tests/xfstests/prepare-tree "$1" 2>&1); [ $? = 1 ] && grep -q "is not an xfstests tree (no common/rc)" <<< "$o" && ! grep -q Traceback <<< "$o"' _ "$here/tests"
finish
