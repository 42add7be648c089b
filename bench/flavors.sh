#!/usr/bin/env bash
# The flavors' checks on Fashion-MNIST, as figures (not a timed test): KL sparsity, denoising,
# contractive and greedy pretraining against their plain counterparts. Results go in BENCHMARKS.md.
#   cargo build --release && bench/flavors.sh [EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
ae=target/release/ae
e=${1:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
train() { local out=$1; shift; "$ae" train --epochs "$e" --val-fraction 0 --threads 2 --quiet --out "$tmp/$out" "$@" >/dev/null 2>&1; }
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read())['$1'])"; }
echo "# $e epochs each, seed 0, batch 256, Adam 1e-3, 60,000 training images, test split"

train kl --hidden 196 --activation sigmoid --sparsity kl:0.05:3
tail -1 "$tmp/kl/metrics.jsonl" | python3 -c "import json,sys; m=json.loads(sys.stdin.read()); print(f\"KL 784-196 rho 0.05 beta 3: mean code activation {m['code_mean_activation']:.4f} (target 0.05 +- 0.01), units within 0.02 of rho {100*m['code_units_near_rho']:.0f}%\")"

train dae --hidden 256,64 --noise mask:0.3
train plain --hidden 256,64
d=$("$ae" eval "$tmp/dae" --noise mask:0.3 --json); p=$("$ae" eval "$tmp/plain" --noise mask:0.3 --json)
echo "denoising mask:0.3 784-256-64: corrupted input $(echo "$d" | field noisy_psnr_db | cut -c1-5) dB, denoising model $(echo "$d" | field psnr_db | cut -c1-5) dB, vanilla same shape $(echo "$p" | field psnr_db | cut -c1-5) dB"

train cae --hidden 256 --activation sigmoid --contractive 1.3e-4
train sig --hidden 256 --activation sigmoid
c=$("$ae" eval "$tmp/cae" --json); s=$("$ae" eval "$tmp/sig" --json)
echo "contractive 784-256 sigmoid lambda 1.3e-4: mean ||J||_F $(echo "$c" | field mean_jacobian_norm | cut -c1-6) vs vanilla $(echo "$s" | field mean_jacobian_norm | cut -c1-6); test MSE $(echo "$c" | field mse | cut -c1-7) vs $(echo "$s" | field mse | cut -c1-7)"

train greedy --hidden 1000,500,250,30 --code-activation linear --pretrain "greedy:$e"
train e2e --hidden 1000,500,250,30 --code-activation linear
echo "784-1000-500-250-30: greedy pretrained + $e epochs fine-tuning, test MSE $("$ae" eval "$tmp/greedy" --json | field mse | cut -c1-7); end to end from random init, $e epochs: $("$ae" eval "$tmp/e2e" --json | field mse | cut -c1-7)"
