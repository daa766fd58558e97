#!/bin/sh
# Build the stress suite's C helpers on the host into out/stress/bin/ (the
# guest runs the host's root, and cc under TCG takes tens of seconds).
# Not executable on purpose: tests/guest/run runs every executable file of
# the suite; scripts/test and scripts/stress run `sh .../build-c.sh`.
set -e
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../../../out/stress/bin"
mkdir -p "$out"
for c in faultops fsstress maptrunc; do
  cc -O2 -Wall -o "$out/$c" "$here/$c.c"
done
