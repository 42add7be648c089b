"""The `ae` program for tests that compare the Python package or exported models with it."""
import os

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
