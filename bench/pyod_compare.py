#!/usr/bin/env python3
"""Our `AutoencoderDetector` against PyOD's `AutoEncoder` (PyTorch CPU) in one run: the same
network (64-32-64 ReLU, linear output, standardized input, Adam with weight decay 1e-5; PyOD's
batch normalization and dropout off), epochs, batch size and learning rate, on scikit-learn's bundled tables and on
Fashion-MNIST as flat rows. One class is normal: its rows are split (seeded) into training and
test rows, and the test set adds every other class's rows (a tenth of them for Fashion-MNIST) as
anomalies. Prints fit seconds and ROC AUC of each, and the ratio of fit times.

Usage (after `pip install ./crates/ae-py` and `pip install pyod torch` in .venv):
    .venv/bin/python bench/pyod_compare.py --seeds 0,1,2,3,4 --threads 2
"""
import argparse
import gzip
import os
import statistics
import time

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.metrics import roc_auc_score


def fashion_mnist(limit):
    path = "/usr/share/datasets/fashion-mnist"
    with gzip.open(os.path.join(path, "train-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
    with gzip.open(os.path.join(path, "train-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return x[:limit].astype(np.float64) / 255.0, y[:limit]


def split(x, y, normal, seed, anomaly_share):
    rng = np.random.default_rng(seed)
    idx = rng.permutation(np.flatnonzero(y == normal))
    cut = int(0.7 * len(idx))
    others = np.flatnonzero(y != normal)
    others = rng.choice(others, max(1, int(anomaly_share * len(others))), replace=False)
    test = np.concatenate([idx[cut:], others])
    return x[idx[:cut]], x[test], (y[test] != normal).astype(int)


def ours(x_train, x_test, args, seed):
    from autoencoder import AutoencoderDetector

    det = AutoencoderDetector(
        hidden=[64, 32], epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        scaling="standardize", output_activation="linear", weight_decay="l2:1e-5",
        val_fraction=0.0, threads=args.threads, random_state=seed,
    )
    t = time.perf_counter()
    det.fit(x_train)
    return time.perf_counter() - t, det.decision_function(x_test)


def pyod(x_train, x_test, args, seed):
    import torch
    from pyod.models.auto_encoder import AutoEncoder

    torch.set_num_threads(args.threads)
    clf = AutoEncoder(
        hidden_neuron_list=[64, 32], epoch_num=args.epochs, batch_size=args.batch_size,
        lr=args.lr, random_state=seed, verbose=0, device="cpu",
        # The same network as ours: PyOD's default adds batch normalization and dropout.
        batch_norm=False, dropout_rate=0.0,
    )
    t = time.perf_counter()
    clf.fit(x_train)
    return time.perf_counter() - t, clf.decision_function(x_test)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--fashion-rows", type=int, default=20000)
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    sets = [
        ("breast cancer", *load_breast_cancer(return_X_y=True), 1, 1.0),
        ("wine", *load_wine(return_X_y=True), 0, 1.0),
        ("digits", *load_digits(return_X_y=True), 0, 1.0),
        ("fashion-mnist", *fashion_mnist(args.fashion_rows), 0, 0.1),
    ]
    # One fit of each first, untimed: PyTorch's first call pays for its start-up.
    warm = np.random.default_rng(0).normal(size=(64, 8))
    ours(warm, warm, args, 0)
    pyod(warm, warm, args, 0)
    print(f"{'data':<14} {'rows':>6} {'ours s':>8} {'pyod s':>8} {'speed-up':>9} {'ours AUROC':>11} {'pyod AUROC':>11}")
    for name, x, y, normal, share in sets:
        rows = []
        for seed in seeds:
            x_train, x_test, anomalous = split(x, y, normal, seed, share)
            t_o, s_o = ours(x_train, x_test, args, seed)
            t_p, s_p = pyod(x_train, x_test, args, seed)
            rows.append((t_o, t_p, roc_auc_score(anomalous, s_o), roc_auc_score(anomalous, s_p)))
        t_o, t_p, a_o, a_p = (statistics.mean(c) for c in zip(*rows))
        print(f"{name:<14} {len(x_train):>6} {t_o:>8.3f} {t_p:>8.3f} {t_p / t_o:>8.1f}x {a_o:>11.3f} {a_p:>11.3f}")


if __name__ == "__main__":
    main()
