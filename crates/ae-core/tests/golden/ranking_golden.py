"""Golden values for tests/ranking_golden.rs: AUROC, average precision and k-nearest-neighbour
predictions computed by scikit-learn, an implementation independent of ours.

Run from the repository root with the benchmark venv (bench/setup-venv.sh, plus scikit-learn):
    .venv/bin/python crates/ae-core/tests/golden/ranking_golden.py
"""
import json

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.neighbors import KNeighborsClassifier

rng = np.random.default_rng(7)
cases = []
for n, ties in [(12, False), (50, True), (200, True), (31, False)]:
    y = rng.integers(0, 2, n)
    y[0], y[1] = 0, 1
    s = rng.normal(size=n) + 0.8 * y
    if ties:
        s = np.round(s, 1)
    cases.append({
        "labels": y.tolist(),
        "scores": [float(v) for v in s.astype(np.float32)],
        "auroc": roc_auc_score(y, s.astype(np.float32)),
        "average_precision": average_precision_score(y, s.astype(np.float32)),
    })

knn = []
for k, (ntr, nte, d, c) in [(1, (40, 15, 3, 3)), (5, (120, 30, 7, 4)), (3, (60, 20, 2, 2))]:
    xtr = rng.normal(size=(ntr, d)).astype(np.float32)
    ytr = rng.integers(0, c, ntr)
    xte = rng.normal(size=(nte, d)).astype(np.float32)
    pred = KNeighborsClassifier(n_neighbors=k).fit(xtr, ytr).predict(xte)
    knn.append({
        "k": k, "dim": d,
        "train": xtr.ravel().tolist(), "train_labels": ytr.tolist(),
        "test": xte.ravel().tolist(), "predicted": pred.tolist(),
    })

with open("crates/ae-core/tests/golden/ranking_golden.json", "w") as f:
    json.dump({"ranking": cases, "knn": knn}, f)
