#!/usr/bin/env python3
"""Golden values for crates/ae-core/tests/probe_golden.rs: scikit-learn's LogisticRegression
(multinomial, lbfgs, C = 1/(λ·N), tolerance 1e-10) on standardized features.

Run: .venv/bin/python crates/ae-core/tests/golden/probe_golden.py  (writes probe_golden.json here)

Data (i = row, j = feature, rebuilt by the Rust test): 150 training and 60 test rows of 5
features, class c = i % 3; x[i][j] = sin(0.7 i + 1.3 j) + 0.8·[j == c] + 0.3·cos(2.1 i·j + 0.5).
Reported: the objective at scikit-learn's solution (mean cross-entropy + λ/2·‖W‖² on the
training rows standardized with the training mean and deviation), test accuracy, λ.
"""
import json
import math
import os

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression


def rows(start, n):
    x = [[math.sin(0.7 * i + 1.3 * j) + 0.8 * (j == i % 3) + 0.3 * math.cos(2.1 * i * j + 0.5)
          for j in range(5)] for i in range(start, start + n)]
    return np.array(x), np.array([i % 3 for i in range(start, start + n)])


xtr, ytr = rows(0, 150)
xte, yte = rows(150, 60)
mu, sd = xtr.mean(axis=0), xtr.std(axis=0)
xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
out = {"sklearn": sklearn.__version__}
for lam in [1e-4, 1e-2]:
    clf = LogisticRegression(C=1.0 / (lam * len(xtr)), tol=1e-10, max_iter=10000).fit(xtr, ytr)
    p = clf.predict_proba(xtr)
    ce = -np.mean(np.log(p[np.arange(len(ytr)), ytr]))
    cost = ce + 0.5 * lam * np.sum(clf.coef_ ** 2)
    out[str(lam)] = {"cost": cost, "accuracy": float(np.mean(clf.predict(xte) == yte))}
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe_golden.json"), "w") as f:
    json.dump(out, f, indent=1)
print("wrote probe_golden.json", out)
