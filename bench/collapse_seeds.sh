#!/usr/bin/env bash
# Does the conv preset with a dense code collapse or lose code units on sparse images? Ten seeds on
# scikit-learn's 8x8 digits (all 1,797) and on the first 10,000 Fashion-MNIST training images, each
# with today's default code activation (linear) and with the old one (ReLU, as the hidden layers).
# Prints one row per seed: final validation loss, dead/constant code units, or the collapse error.
#   bench/collapse_seeds.sh [EPOCHS_DIGITS=20] [EPOCHS_FASHION=3]
# Needs bench/setup-venv.sh's environment (.venv: numpy, scikit-learn) and Fashion-MNIST installed.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
cargo build --release -q --bin ae
ae=target/release/ae
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$py" - "$work" <<'PY'
import gzip, sys
import numpy as np
from sklearn.datasets import load_digits
out = sys.argv[1]
np.save(f"{out}/digits.npy", (load_digits().images / 16).astype(np.float32))
with gzip.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") as f:
    x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
np.save(f"{out}/fashion10k.npy", x[:10000])
PY
run() { # data epochs seed code-activation
  local log="$work/log" r="$work/run"
  if "$ae" train --data "npy:$work/$1" --preset conv --code 32 --batch-size 64 --epochs "$2" \
      --seed "$3" --code-activation "$4" --threads 1 --quiet --force --out "$r" >"$log" 2>&1; then
    local loss dead
    loss=$(grep -oE 'val_loss [0-9.]+' "$log" | tail -1 | cut -d' ' -f2)
    dead=$(grep -oE '[0-9]+ of 32 code units (are|is) 0' "$log" | cut -d' ' -f1 || true)
    printf '%-14s %-7s %4s  %-10s %4s\n' "$1" "$4" "$3" "$loss" "${dead:-0}"
  else
    printf '%-14s %-7s %4s  %s\n' "$1" "$4" "$3" "$(grep -oE 'collapsed at epoch [0-9]+' "$log" || tail -1 "$log")"
  fi
}
printf '%-14s %-7s %4s  %-10s %4s\n' data code seed val_loss dead
for data in "digits.npy:${1:-20}" "fashion10k.npy:${2:-3}"; do
  for act in linear relu; do
    for seed in 0 1 2 3 4 5 6 7 8 9; do run "${data%%:*}" "${data##*:}" "$seed" "$act"; done
  done
done
