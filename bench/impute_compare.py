"""ae impute beside scikit-learn's imputers on scikit-learn's bundled tables.

For each table and missing rate, the same cells (missing completely at random, seeded) are
removed from the feature columns; every imputer fills them; the error is the RMSE over the removed
cells in min-max units (each column divided by its range on the full table), so tables and columns
weigh alike. ae trains on the incomplete table itself (`ae train --missing allow`), then fills it
(`ae impute`).

    .venv/bin/python bench/impute_compare.py [--rates 0.1,0.3] [--seeds 3] [-- AE TRAIN FLAGS]
"""
import argparse
import warnings
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from sklearn import datasets
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AE = os.environ.get("AE_BIN", os.path.join(ROOT, "target", "release", "ae"))
TABLES = {
    "breast_cancer": datasets.load_breast_cancer,
    "wine": datasets.load_wine,
    "diabetes": datasets.load_diabetes,
    "iris": datasets.load_iris,
}


def rmse(filled, full, mask, span):
    d = (filled - full) / span
    return float(np.sqrt(np.mean(d[mask] ** 2)))


def ae_impute(gappy, flags, work):
    src = os.path.join(work, "gappy.csv")
    header = ",".join(f"f{j}" for j in range(gappy.shape[1]))
    np.savetxt(src, gappy, delimiter=",", header=header, comments="", fmt="%.10g")
    run, out = os.path.join(work, "run"), os.path.join(work, "filled.csv")
    cmd = [AE, "train", "--data", f"csv:{src}", "--missing", "allow", "--out", run, "--force", "--quiet"]
    subprocess.run(cmd + flags, check=True, capture_output=True)
    subprocess.run([AE, "impute", run, "--data", f"csv:{src}", "--out", out, "--force"], check=True,
                   capture_output=True)
    return np.loadtxt(out, delimiter=",", skiprows=1)


def main():
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", module="sklearn")
    p = argparse.ArgumentParser()
    p.add_argument("--rates", default="0.1,0.3")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--tables", default=",".join(TABLES))
    p.add_argument("ae_flags", nargs="*")
    a = p.parse_args()
    names = ["mean", "knn", "iterative", "ae"]
    print(f"ae flags: {' '.join(a.ae_flags) or '(defaults)'}")
    print(f"{'table':<14} {'missing':>7} " + " ".join(f"{n:>9}" for n in names) + "  ae/iterative  ae s")
    totals = {n: [] for n in names}
    for table in a.tables.split(","):
        full = TABLES[table]().data.astype(np.float64)
        span = full.max(0) - full.min(0)
        span[span == 0] = 1
        for rate in [float(r) for r in a.rates.split(",")]:
            errs = {n: [] for n in names}
            secs = []
            for seed in range(a.seeds):
                rng = np.random.default_rng(seed)
                mask = rng.random(full.shape) < rate
                mask[mask.all(1), 0] = False  # no row entirely missing
                gappy = full.copy()
                gappy[mask] = np.nan
                for name, imp in [("mean", SimpleImputer()), ("knn", KNNImputer()),
                                  ("iterative", IterativeImputer(max_iter=10, random_state=seed))]:
                    errs[name].append(rmse(imp.fit_transform(gappy), full, mask, span))
                with tempfile.TemporaryDirectory() as work:
                    t = time.time()
                    errs["ae"].append(rmse(ae_impute(gappy, ["--seed", str(seed)] + a.ae_flags, work),
                                           full, mask, span))
                    secs.append(time.time() - t)
            row = {n: float(np.mean(v)) for n, v in errs.items()}
            for n in names:
                totals[n].append(row[n])
            print(f"{table:<14} {rate:>7.0%} " + " ".join(f"{row[n]:>9.4f}" for n in names)
                  + f"  {row['ae'] / row['iterative']:>12.3f}  {np.mean(secs):>4.1f}")
    print(f"{'mean':<14} {'':>7} " + " ".join(f"{np.mean(totals[n]):>9.4f}" for n in names)
          + f"  {np.mean(totals['ae']) / np.mean(totals['iterative']):>12.3f}")


if __name__ == "__main__":
    sys.exit(main())
