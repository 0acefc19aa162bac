#!/usr/bin/env bash
# make demo: `trellis demo` (a client riding through a failover on an in-process trellis-sim
# replica set, with its timeline), then Trellis's BSON layer on the driver benchmark documents:
# each Extended JSON data set converted to BSON, validated, printed back in relaxed and
# canonical Extended JSON, and a damaged file reported.
set -euo pipefail
build=${1:-build}
trellis="$build/bin/trellis"
data=${TRELLIS_BENCH_DATA_DIR:-$(cd "$(dirname "$0")/.." && pwd)/../shared/bench-data}/extended_bson

echo "=== trellis demo: a simulated 3-member replica set, a client writing and reading, a stepdown ==="
"$trellis" demo

if [[ ! -d "$data" ]]; then
  echo
  echo "demo: the BSON part needs the benchmark data at $data (set TRELLIS_BENCH_DATA_DIR); skipped"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

show() { echo; echo "\$ $*"; "$@"; }
cut_lines() { cut -c1-"${1}" | sed 's/$/ .../'; }

for set in flat deep full; do
  echo
  echo "=== ${set}_bson.json ==="
  show "$trellis" bson from-json --legacy-dates "$data/${set}_bson.json" -o "$work/$set.bson"
  show "$trellis" bson validate "$work/$set.bson"
  echo; echo "\$ $trellis bson dump $work/$set.bson            # relaxed, first 220 characters"
  "$trellis" bson dump "$work/$set.bson" | cut_lines 220
  echo; echo "\$ $trellis bson dump --canonical $work/$set.bson # canonical, first 220 characters"
  "$trellis" bson dump --canonical "$work/$set.bson" | cut_lines 220
done

echo
echo "=== a damaged file: the first element type byte (offset 4) of full.bson overwritten with 0x42 ==="
cp "$work/full.bson" "$work/damaged.bson"
printf '\x42' | dd of="$work/damaged.bson" bs=1 seek=4 conv=notrunc status=none
echo "\$ $trellis bson validate $work/damaged.bson"
"$trellis" bson validate "$work/damaged.bson" || echo "(exit status $?)"
echo
echo "=== the same document converted twice is byte-identical ==="
"$trellis" bson dump --canonical "$work/full.bson" > "$work/full.json"
"$trellis" bson from-json "$work/full.json" -o "$work/full2.bson" 2>/dev/null
cmp "$work/full.bson" "$work/full2.bson" && echo "full.bson -> canonical Extended JSON -> BSON: identical ($(stat -c %s "$work/full.bson") bytes)"

