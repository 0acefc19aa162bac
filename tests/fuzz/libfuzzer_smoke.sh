#!/bin/sh
# Runs each libFuzzer target of a fuzz build for a few seconds on its seeds.
#   libfuzzer_smoke.sh BUILD_FUZZ_DIR WORK_DIR SECONDS COMMITTED_SEEDS SPEC_SEEDS TARGET...
# New inputs go to WORK_DIR/corpus/<target>, logs and reproducers to WORK_DIR/findings.
# Exits 77 (skipped) when BUILD_FUZZ_DIR has no fuzz binaries; 1 when a target finds a failure.
dir=$1 work=$2 seconds=$3 seeds=$4 spec_seeds=$5
shift 5
if [ ! -x "$dir/bin/fuzz_$1" ]; then
  echo "SKIP: no libFuzzer build at $dir (make fuzz builds one with clang-16)"
  exit 77
fi
mkdir -p "$work/findings"
status=0
for t in "$@"; do
  exe="$dir/bin/fuzz_$t"
  [ -x "$exe" ] || { echo "fuzz_$t: missing from $dir/bin"; status=1; continue; }
  corpus="$work/corpus/$t"
  mkdir -p "$corpus"
  set -- "$corpus" "$seeds/$t"
  [ -d "$spec_seeds/$t" ] && set -- "$@" "$spec_seeds/$t"
  log="$work/findings/fuzz_$t.log"
  if "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$work/findings/$t-" "$@" >"$log" 2>&1; then
    echo "fuzz_$t: $(grep -m1 '^stat::number_of_executed_units' "$log" | sed 's/.*: *//') executions, no finding"
  else
    echo "fuzz_$t: FAILED, see $log"
    tail -n 30 "$log"
    status=1
  fi
done
exit $status
