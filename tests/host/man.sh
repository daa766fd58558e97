# The man pages render with man-db and groff without a warning, have a NAME
# line whatis can index, and agree with each tool's --help: every option
# --help prints is in the page, and every option the page lists under
# OPTIONS is in --help.
# shellcheck source=tests/host/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$here"

for page in man/*.[158]; do
  w=$(groff -man -ww -z "$page" 2>&1)
  check "$page: groff -man -ww -z gives no warning${w:+ ($w)}" [ -z "$w" ]
  r=$(LANG=C MANWIDTH=80 man -l --warnings "$page" 2>&1 >"$scratch/rendered")
  check "$page: man -l --warnings renders it without a warning${r:+ ($r)}" \
    bash -c '[ -z "$1" ] && [ "$(wc -l < "$2")" -gt 20 ]' _ "$r" "$scratch/rendered"
  name=$(basename "$page"); name=${name%.*}
  check "$page: lexgrog finds the NAME line" bash -c 'lexgrog "$1" | grep -q "\"$2 - "' _ "$page" "$name"
done

# page text with roff escapes of hyphens and fonts removed
plain() { sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$1"; }
# options listed as .TP tags in the page's OPTIONS section
page_opts() {
  plain "$1" | awk '/^\.SH OPTIONS/ {on=1; next} /^\.SH/ {on=0} on && prev == ".TP" {print} {prev=$0}' |
    grep -oE '(^|[ "])--?[A-Za-z][A-Za-z-]*' | tr -d ' "' | sort -u
}
# in_page PAGE OPT: OPT appears in PAGE as a word of its own
in_page() { plain "$1" | grep -qE -- "(^|[^A-Za-z0-9-])$2([^A-Za-z0-9-]|\$)"; }
# options a --help text mentions
help_opts() { grep -oE '(^|[ ,(])--?[A-Za-z][A-Za-z-]*' | tr -d ' ,(' | sort -u; }

for tool in mkfs.ferrofs fsck.ferrofs ferrofs-du ferrofs-db ferrofs-defrag; do
  page=$(ls man/"$tool".[158])
  bin=out/bin/$tool
  if [ ! -x "$bin" ]; then not_ok "$tool: no $bin (run make tools)"; continue; fi
  help=$("$bin" --help 2>"$scratch/err"); rc=$?
  check "$tool --help exits 0 with the help on stdout and nothing on stderr" \
    bash -c '[ "$1" = 0 ] && [ -n "$2" ] && [ ! -s "$3" ]' _ "$rc" "$help" "$scratch/err"
  h2=$("$bin" -h 2>/dev/null)
  check "$tool -h prints the same help" [ "$h2" = "$help" ]
  hopts=$(printf '%s\n' "$help" | help_opts)
  check "$tool --help lists options" [ -n "$hopts" ]
  for o in $hopts; do
    check "$tool: option $o of --help is in $page" in_page "$page" "$o"
  done
  popts=$(page_opts "$page")
  check "$page lists options under OPTIONS" [ -n "$popts" ]
  for o in $popts; do
    check "$tool: option $o of $page is in --help" grep -qx -- "$o" <<< "$hopts"
  done
done 2>&1

# ferrofs-db's subcommands and fields: the same words in both
dbhelp=$(out/bin/ferrofs-db --help 2>/dev/null)
for w in print get set feature_incompat feature_ro_compat feature_compat total_blocks version state; do
  check "ferrofs-db: '$w' is in --help and in ferrofs-db.8" \
    bash -c 'printf "%s\n" "$1" | grep -qw -- "$2" && grep -qw -- "$2" man/ferrofs-db.8' _ "$dbhelp" "$w"
done
finish
