# scripts/vm-run runs the command exactly as given: the argv the guest sees
# is byte for byte the one passed (newlines, tabs, quotes, $, backslashes,
# empty arguments, bytes that are not UTF-8), a `sh -c` script with several
# lines runs line by line, and FERROFS_T_* values arrive unchanged. One boot.
# shellcheck source=tests/host/lib.sh
. "$(dirname "$0")/../host/lib.sh"
cd "$here"

args=(
  $'line one\nline two'
  $'a\ttab'
  "single ' quote"
  "it's"
  'double " quote'
  '$HOME $(echo no) `echo no` ${x:-y} $1 $@'
  'back\slash \\ \n \'
  ''
  ' leading and trailing spaces '
  '-' '--' '*' '~' ';|&<>(){}!#'
  $'\xff\xfe not utf-8'
  $'trailing newline\n'
  "''"
  '\'"'"
)
envval=$'two\nlines with \'quotes\', "double", $dollar and \\ backslash'
printf '%s\0' "${args[@]}" > "$scratch/expected"
printf '%s' "$envval" > "$scratch/expected-env"

# the guest: a two-line sh -c script (the issue's example) that then hands
# "$@" to python, which writes argv NUL-separated and the env value
script='printf "%s\n" one > "$FERROFS_RUNDIR/sh.out"
printf "%s\n" two >> "$FERROFS_RUNDIR/sh.out"
exec python3 -c "import os, sys
d = os.environ[\"FERROFS_RUNDIR\"]
open(d + \"/argv\", \"wb\").write(b\"\".join(os.fsencode(a) + b\"\\0\" for a in sys.argv[1:]))
open(d + \"/env\", \"wb\").write(os.environb[b\"FERROFS_T_QUOTING\"])" "$@"'
# the run directory must be outside /tmp: the guest mounts a tmpfs there
mkdir -p out/vm
run=$(mktemp -d "$here/out/vm/quoting.XXXXXX")
trap 'rm -rf "$scratch" "$run"' EXIT
out=$(FERROFS_T_QUOTING=$envval scripts/vm-run --rundir "$run" --timeout 300 -- sh -c "$script" sh "${args[@]}" 2>&1); rc=$?
check "vm-run -- sh -c <two-line script> <${#args[@]} awkward args> exits 0${out:+ (tail: $(printf '%s\n' "$out" | tail -3 | tr '\n' '|'))}" [ "$rc" = 0 ]
check "both lines of the sh -c script ran" bash -c '[ "$(cat "$1/sh.out" 2>/dev/null)" = "one
two" ]' _ "$run"
check "the guest's argv equals the given one, byte for byte (${#args[@]} args)" cmp -s "$scratch/expected" "$run/argv"
if ! cmp -s "$scratch/expected" "$run/argv"; then
  echo "  expected: $(od -c "$scratch/expected" | head -5)"; echo "  got:      $(od -c "$run/argv" 2>&1 | head -5)"
fi
check "a FERROFS_T_ value with newlines, quotes, \$ and \\ arrives unchanged" cmp -s "$scratch/expected-env" "$run/env"
finish
