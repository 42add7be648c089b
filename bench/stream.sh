#!/usr/bin/env bash
# Streaming against in-memory training (issue 18), both with the same binary in one run:
#  1. Fashion-MNIST's 60,000 training images written as 20 .npy shards, trained 5 epochs with
#     --stream (default shuffle buffer) and 5 epochs in memory from one .npy file, seeds 0-2; mean
#     test MSE of each on the test split (target: streamed within 1% of in-memory).
#  2. A uint8 NumPy data set of GB gigabytes (default 12; Fashion-MNIST tiled, each copy shifted by
#     one pixel more), one epoch of the default dense model with --stream: peak resident memory
#     (target under 1 GB) and training examples per second, beside the in-memory path's on the
#     first 600,000 rows (target: at least 90% of it). The big file is deleted at the end.
#   bench/stream.sh [GB=12] [PARTS="1 2"] [FOLDER=a temporary folder on the same disk as this checkout]
# Needs bench/setup-venv.sh's environment (.venv: numpy) and Fashion-MNIST installed.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
cargo build --release -q --bin ae
ae=target/release/ae
gb=${1:-12}
parts=${2:-1 2}
work=${3:-$(mktemp -d -p "$PWD/target")}
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
threads=$(nproc)

"$py" - "$work" "$gb" <<'PY'
import gzip, os, sys
import numpy as np
out, gb = sys.argv[1], float(sys.argv[2])
with gzip.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") as f:
    x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
np.save(f"{out}/fashion.npy", x)
os.makedirs(f"{out}/shards")
for k, part in enumerate(np.array_split(x, 20)):
    np.save(f"{out}/shards/part-{k:02d}.npy", part)
rows = int(gb * 1e9) // 784
big = np.lib.format.open_memmap(f"{out}/big.npy", mode="w+", dtype=np.uint8, shape=(rows, 784))
for start in range(0, rows, len(x)):
    k = start // len(x)
    n = min(len(x), rows - start)
    big[start:start + n] = np.roll(x[:n], k % 784, axis=1)
big.flush()
del big
np.save(f"{out}/subset.npy", np.load(f"{out}/big.npy", mmap_mode="r")[:600_000])
print(f"wrote {rows} rows ({rows * 784 / 1e9:.1f} GB) to big.npy")
PY

mse() { "$ae" eval "$1" --data fashion-mnist --json | "$py" -c "import json,sys; print(json.load(sys.stdin)['mse'])"; }
if [[ " $parts " == *" 1 "* ]]; then
echo "== 1. Fashion-MNIST in 20 shards, 5 epochs, default dense model, seeds 0-2, $threads threads"
for seed in 0 1 2; do
  "$ae" train --data "npy:$work/shards" --stream --epochs 5 --seed $seed --threads "$threads" --quiet --out "$work/streamed$seed" 2>/dev/null
  "$ae" train --data "npy:$work/fashion.npy" --epochs 5 --seed $seed --threads "$threads" --quiet --out "$work/memory$seed" 2>/dev/null
  echo "seed $seed: test MSE streamed $(mse "$work/streamed$seed"), in memory $(mse "$work/memory$seed")"
done | tee "$work/mse.log"
"$py" - "$work/mse.log" <<'PY'
import re, sys
rows = [list(map(float, re.findall(r"[0-9]+\.[0-9]+", l))) for l in open(sys.argv[1])]
s = sum(r[0] for r in rows) / len(rows); m = sum(r[1] for r in rows) / len(rows)
print(f"mean test MSE: streamed {s:.5f}, in memory {m:.5f}, ratio {s / m:.4f} (target <= 1.01)")
PY
fi

[[ " $parts " == *" 2 "* ]] || exit 0
echo "== 2. one epoch of the default dense model, $threads threads"
peak() { # log-file command...: runs it, prints peak RSS in MB and the epoch's examples per second
  local log=$1; shift
  /usr/bin/time -f "%M %e %U %S" -o "$log.rss" "$@" > "$log" 2>&1
  echo "wall, user, system seconds: $(cut -d' ' -f2- "$log.rss") ($*)" >&2
  echo "$(( $(cut -d' ' -f1 "$log.rss") / 1024 )) $(grep -oE '[0-9]+ (img|rows)/s' "$log" | tail -1 | cut -d' ' -f1) $(grep -oE '\([0-9]+ train' "$log" | tr -d '(' | cut -d' ' -f1)"
}
read -r srss sps srows < <(peak "$work/big.log" "$ae" train --data "npy:$work/big.npy" --stream --epochs 1 --threads "$threads" --out "$work/big")
read -r mrss mps mrows < <(peak "$work/sub.log" "$ae" train --data "npy:$work/subset.npy" --epochs 1 --threads "$threads" --out "$work/sub")
echo "streamed $gb GB: $srows training rows, peak RSS $srss MB, $sps examples/s"
echo "in memory, 600,000 rows: $mrows training rows, peak RSS $mrss MB, $mps examples/s"
"$py" -c "print(f'throughput streamed / in memory: {$sps/$mps:.3f} (target >= 0.90); peak RSS {$srss} MB (target < 1024)')"
