#!/usr/bin/env bash
# Runs every fuzz target for a while (default 10 minutes each) and prints, per target, the
# executions, the coverage and whether libFuzzer found a crash. Not part of CI.
#   cargo install cargo-fuzz   (once)
#   bench/fuzz.sh [SECONDS_PER_TARGET] [PARALLEL_JOBS]
# Works on stable Rust: built without a sanitizer (`-s none`); a panic, abort or an allocation
# beyond -rss_limit_mb is a finding, written to fuzz/artifacts/TARGET/.
set -uo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-600}
jobs=${2:-1}
python3 make_seeds.py
cargo fuzz build -s none --release >/dev/null 2>&1 || { echo "cargo fuzz build failed"; exit 1; }
run_one() {
  t=$1; secs=$2
  log=$(mktemp)
  cargo fuzz run -s none --release "$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 >"$log" 2>&1
  status=$?
  runs=$(grep -oE "Done [0-9]+ runs" "$log" | grep -oE "[0-9]+" | tail -1)
  cov=$(grep -oE "cov: [0-9]+" "$log" | tail -1)
  if [ $status -eq 0 ]; then finding="no finding"; else finding="FINDING: $(grep -m1 -E 'SUMMARY|panicked' "$log")"; fi
  echo "$t: ${runs:-?} executions in ${secs} s, ${cov:-cov: ?}, $finding"
  rm -f "$log"
}
export -f run_one
printf '%s\n' idx csv npy config run_folder | xargs -P "$jobs" -I{} bash -c "run_one {} $secs"
