"""The `ae` program for tests that compare the Python package or exported models with it."""
import json
import os
import subprocess

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def ae_binary():
    """The path of the `ae` binary: `$AE_BIN`, else the release build; fails in CI when absent."""
    path = os.environ.get("AE_BIN") or os.path.join(ROOT, "target", "release", "ae")
    if not os.path.exists(path):
        if os.environ.get("CI"):
            pytest.fail(f"the ae binary is needed at {path} (build it with cargo build --release)")
        pytest.skip(f"no ae binary at {path}")
    return path


def run(*args):
    """Runs `ae` with `args`; its standard output, failing the test if it fails."""
    return subprocess.run([ae_binary(), *map(str, args)], check=True, capture_output=True, text=True).stdout


def images(n=150, seed=0, side=6, channels=1):
    """Small images in [0, 255] with a little structure, as uint8-valued floats."""
    rng = np.random.default_rng(seed)
    d = channels * side * side
    base = rng.random((3, d))
    x = base[rng.integers(0, 3, n)] * 200 + rng.random((n, d)) * 55
    return np.round(x).reshape(n, channels, side, side).astype(np.float32)


def run_scaler(model):
    """A run's scaling (offset, scale) from its meta.json."""
    meta = json.loads((model / "meta.json").read_text())
    s = meta["scaler"]
    return np.array(s["offset"], dtype=np.float32), np.array(s["scale"], dtype=np.float32)
