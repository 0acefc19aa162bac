#!/usr/bin/env bash
# make demo: Trellis's BSON layer on the driver benchmark documents.
# Converts each Extended JSON data set to BSON, validates it, prints it back in
# relaxed and canonical Extended JSON, and shows how a damaged file is reported.
set -euo pipefail
build=${1:-build}
trellis="$build/bin/trellis"
data=${TRELLIS_BENCH_DATA_DIR:-$(cd "$(dirname "$0")/.." && pwd)/../shared/bench-data}/extended_bson
if [[ ! -d "$data" ]]; then
  echo "demo: benchmark data not found at $data (set TRELLIS_BENCH_DATA_DIR)" >&2
  exit 1
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

echo
echo "=== trellis-sim: a 3-member replica set on loopback, driven by PyMongo through a failover ==="
sim="$build/bin/trellis-sim"
"$sim" --topology replset --nodes 3 --election-delay-ms 300 --ready-file "$work/ready.json" > "$work/sim.out" 2> "$work/sim.log" &
sim_pid=$!
trap 'kill $sim_pid 2>/dev/null; wait $sim_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do [[ -f "$work/ready.json" ]] && break; sleep 0.05; done
cat "$work/sim.out"
control=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["control"])' "$work/ready.json")
echo; echo "\$ trellis-sim ctl --control $control status"
"$sim" ctl --control "$control" status
/usr/bin/python3 - "$work/ready.json" "$sim" <<'PY'
import json, subprocess, sys, time
import pymongo
from pymongo.errors import AutoReconnect, NotMasterError
info = json.load(open(sys.argv[1]))
client = pymongo.MongoClient(info["uri"], heartbeatFrequencyMS=500, w="majority")
coll = client.demo.events
coll.drop()
for i in range(100):
    coll.insert_one({"i": i})
old = "%s:%d" % client.primary
print("\nPyMongo wrote 100 documents with w:majority to the primary", old)
print("$ trellis-sim ctl --control %s stepdown %s" % (info["control"], old))
subprocess.run([sys.argv[2], "ctl", "--control", info["control"], "stepdown", old], check=True, stdout=subprocess.DEVNULL)
start, retries = time.monotonic(), 0
for i in range(100, 200):
    while True:
        try:
            coll.insert_one({"i": i})
            break
        except (AutoReconnect, NotMasterError):
            retries += 1
            time.sleep(0.05)
print("100 more writes went on through the failover in %.1f s (%d retried here; PyMongo retries writes itself); new primary %s"
      % (time.monotonic() - start, retries, "%s:%d" % client.primary))
print("documents on the new primary: %d (no majority write lost)" % coll.count_documents({}))
PY
