#!/usr/bin/env python3
"""Anomaly scores on scikit-learn's bundled tables: our autoencoder beside PCA reconstruction error
and IsolationForest, on the same splits.

One-class protocol: one class is normal; its rows are split (seeded) 70/30 into training and test
rows; the test set adds every row of the other classes as anomalies. Each method fits on the
training rows only and scores the test rows; the figure is ROC AUC, the mean over `--seeds` splits,
then over the table's normal classes. PCA: standardized features, k components (`--pca-k`),
squared reconstruction error. IsolationForest: scikit-learn's defaults. ae: `AutoencoderDetector`
(the Python package) with the library's defaults unless `--ae` gives settings as JSON.

    target/py-venv/bin/python bench/anomaly_tables.py [--seeds 5] [--ae '{"epochs": 100}']
"""
import argparse
import json
import time
import warnings

import numpy as np
from sklearn import datasets
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

TABLES = {  # name: (loader, normal classes)
    "breast_cancer": (datasets.load_breast_cancer, [1]),  # benign is normal
    "wine": (datasets.load_wine, [0, 1, 2]),
    "iris": (datasets.load_iris, [0, 1, 2]),
    "digits": (datasets.load_digits, list(range(10))),
}


def split(y, normal, seed):
    rng = np.random.default_rng(seed)
    idx = rng.permutation(np.flatnonzero(y == normal))
    cut = int(0.7 * len(idx))
    test = np.concatenate([idx[cut:], np.flatnonzero(y != normal)])
    return idx[:cut], test


def pca_scores(train, test, k):
    sc = StandardScaler().fit(train)
    a, b = sc.transform(train), sc.transform(test)
    p = PCA(n_components=min(k, a.shape[1], a.shape[0])).fit(a)
    return ((b - p.inverse_transform(p.transform(b))) ** 2).sum(1)


def iforest_scores(train, test, seed):
    return -IsolationForest(random_state=seed).fit(train).score_samples(test)


def ae_scores(train, test, seed, settings):
    from autoencoder import AutoencoderDetector

    det = AutoencoderDetector(random_state=seed, **settings).fit(train)
    return det.decision_function(test)


def main():
    warnings.filterwarnings("ignore")
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--pca-k", type=int, default=2)
    p.add_argument("--tables", default=",".join(TABLES))
    p.add_argument("--ae", default="{}", help="AutoencoderDetector settings as JSON")
    a = p.parse_args()
    settings = json.loads(a.ae)
    names = ["pca", "iforest", "ae"]
    print(f"ae settings: {settings or '(defaults)'}; PCA k={a.pca_k}; {a.seeds} seeds")
    print(f"{'table':<14} {'normal':>6} " + " ".join(f"{n:>8}" for n in names) + "   ae s")
    means = {n: [] for n in names}
    for table in a.tables.split(","):
        load, normals = TABLES[table]
        data = load()
        x, y = data.data.astype(np.float64), data.target
        rows = {n: [] for n in names}
        secs = []
        for normal in normals:
            auc = {n: [] for n in names}
            for seed in range(a.seeds):
                tr, te = split(y, normal, seed)
                truth = (y[te] != normal).astype(int)
                auc["pca"].append(roc_auc_score(truth, pca_scores(x[tr], x[te], a.pca_k)))
                auc["iforest"].append(roc_auc_score(truth, iforest_scores(x[tr], x[te], seed)))
                t = time.perf_counter()
                auc["ae"].append(roc_auc_score(truth, ae_scores(x[tr], x[te], seed, settings)))
                secs.append(time.perf_counter() - t)
            for n in names:
                rows[n].append(np.mean(auc[n]))
        for n in names:
            means[n].append(np.mean(rows[n]))
        label = ",".join(map(str, normals)) if len(normals) < 4 else f"{len(normals)} each"
        print(f"{table:<14} {label:>6} " + " ".join(f"{np.mean(rows[n]):>8.4f}" for n in names)
              + f"  {np.mean(secs):>5.2f}")
    print(f"{'mean':<14} {'':>6} " + " ".join(f"{np.mean(means[n]):>8.4f}" for n in names))


if __name__ == "__main__":
    main()
