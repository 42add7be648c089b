#!/usr/bin/env bash
# Seconds per epoch of two `ae` builds on the same workloads, run alternately in one session so
# that both see the same machine; prints each build's median and fastest epoch (the first epoch of
# each run is left out as warm-up) and the ratio new / old. Used to check that a refactor kept the
# speed.
#
#   bench/two_builds.sh OLD_AE NEW_AE [REPS]
#
# Build an old commit with: git worktree add /tmp/old COMMIT &&
#   (cd /tmp/old && CARGO_TARGET_DIR=/tmp/old-target cargo build --release --bin ae)
set -euo pipefail
old=$1; new=$2; reps=${3:-3}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
log=$tmp/log
for rep in $(seq "$reps"); do
  for who in old new; do
    bin=${!who}
    for work in "dense --hidden 256,64 --epochs 4" "deep --hidden 1000,500,250,30 --epochs 3" "conv --preset conv --epochs 2"; do
      set -- $work; name=$1; shift
      out=$tmp/$who-$name-$rep
      "$bin" train "$@" --val-fraction 0 --threads 2 --quiet --out "$out" > /dev/null 2>&1
      python3 - "$out/metrics.jsonl" "$who" "$name" >> "$log" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for r in rows[1:]:
    print(sys.argv[2], sys.argv[3], r["seconds"])
PY
    done
  done
done
python3 - "$log" <<'PY'
import statistics, sys
from collections import defaultdict
t = defaultdict(list)
for line in open(sys.argv[1]):
    who, name, s = line.split()
    t[(who, name)].append(float(s))
print(f"{'workload':<8} {'old median':>11} {'new median':>11} {'ratio':>6} {'old best':>9} {'new best':>9} {'ratio':>6}  epochs")
for name in ["dense", "deep", "conv"]:
    o, n = t[("old", name)], t[("new", name)]
    mo, mn = statistics.median(o), statistics.median(n)
    print(f"{name:<8} {mo:>11.3f} {mn:>11.3f} {mn/mo:>6.3f} {min(o):>9.3f} {min(n):>9.3f} {min(n)/min(o):>6.3f}  {len(o)}+{len(n)}")
PY
