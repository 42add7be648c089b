#!/usr/bin/env python3
"""The Python package's call overhead: `Autoencoder.transform` of 1,000 rows of 784 features
against the Rust library's time for the same work (scaling plus `codes`, best of 20 each), in one
run, with the same saved model and threads.

    .venv/bin/python bench/python_overhead.py
"""
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from autoencoder import Autoencoder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    rng = np.random.default_rng(0)
    X = rng.random((1000, 784)).astype(np.float32)
    for threads in (1, 2):
        ae = Autoencoder(hidden=[256, 64], epochs=1, threads=threads).fit(X)
        with tempfile.TemporaryDirectory() as d:
            ae.save(os.path.join(d, "run"))
            np.save(os.path.join(d, "x.npy"), X)
            rust = float(subprocess.run(
                ["cargo", "run", "-q", "--release", "-p", "ae-core", "--example", "transform_time", "--",
                 os.path.join(d, "run"), os.path.join(d, "x.npy")],
                cwd=ROOT, check=True, capture_output=True, text=True).stdout)
        best = float("inf")
        for _ in range(20):
            t = time.perf_counter()
            ae.transform(X)
            best = min(best, time.perf_counter() - t)
        print(f"threads {threads}: python {best * 1e3:.3f} ms, library {rust * 1e3:.3f} ms, ratio {best / rust:.2f}")


if __name__ == "__main__":
    sys.exit(main())
