#!/usr/bin/env bash
# Reusing what a run learned, on Fashion-MNIST, as figures (not a timed test): probe accuracies
# beside scikit-learn's on the raw pixels, the few-label classification sweep, and the one-class
# anomaly protocol. Results go in BENCHMARKS.md.
#   cargo build --release && bench/reuse.sh [RUNS_DIR] [SEEDS]
# RUNS_DIR keeps the trained autoencoders between calls (default runs/bench-reuse); the
# scikit-learn reference needs the benchmark venv with scikit-learn (bench/setup-venv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ae=target/release/ae
runs=${1:-runs/bench-reuse}
seeds=${2:-3}
mkdir -p "$runs"
train() { local out=$1; shift; [ -f "$runs/$out/meta.json" ] || "$ae" train --quiet --out "$runs/$out" --force "$@" >/dev/null; }

train dense                         # 784-256-64, 20 epochs (the default run)
train sdae --preset stacked-denoising
# The classic stacked denoising autoencoder (Vincent et al. 2010): sigmoid hidden units.
train sdae-sigmoid --preset stacked-denoising --activation sigmoid
train conv --preset conv
# The one-class protocol reads only a run's settings: one epoch makes the folder.
train conv-anomaly --preset conv --code 32 --batch-size 64 --epochs 1

echo "## probe: test accuracy of softmax regression and 5-NN (ae probe)"
"$ae" probe "$runs/dense" --quiet
if [ -x .venv/bin/python ] && .venv/bin/python -c "import sklearn" 2>/dev/null; then
  echo "## the same on raw pixels with scikit-learn (reference)"
  .venv/bin/python - <<'PY'
import gzip, os, numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
d = "/usr/share/datasets/fashion-mnist"
def idx(name):
    p = os.path.join(d, name)
    raw = gzip.open(p).read() if p.endswith(".gz") else open(p, "rb").read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)
f = lambda stem: next(n for n in os.listdir(d) if n.startswith(stem))
xtr = idx(f("train-images")).reshape(-1, 784) / 255.0
ytr = idx(f("train-labels"))
xte = idx(f("t10k-images")).reshape(-1, 784) / 255.0
yte = idx(f("t10k-labels"))
s = StandardScaler().fit(xtr)
lr = LogisticRegression(max_iter=200).fit(s.transform(xtr), ytr)
knn = KNeighborsClassifier(5).fit(xtr, ytr)
print(f"raw inputs  LogisticRegression {lr.score(s.transform(xte), yte):.4f}  KNeighborsClassifier(5) {knn.score(xte, yte):.4f}")
PY
fi

for r in dense sdae sdae-sigmoid conv; do
  echo "## classify sweep on the $r encoder ($seeds seeds)"
  "$ae" classify "$runs/$r" --sweep 100 --seeds "$seeds" --quiet
done

echo "## one-class anomaly detection, every class (ae anomaly --all-classes)"
for r in dense conv-anomaly; do
  echo "### $r"
  "$ae" anomaly "$runs/$r" --all-classes --epochs 20 --quiet
done
