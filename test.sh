#!/usr/bin/env bash
# Every test of the project: the Rust workspace (unit, integration, doc tests and the examples),
# then the Python package built from this checkout into a virtual environment and its pytest
# suite. Ends with one line adding up both: `total: N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")"

log=$(mktemp)
# Checks that cannot run here write why into this file (tests/common: `skip`); they are counted.
export AE_SKIP_LOG="$PWD/target/skipped.log"
mkdir -p target && : > "$AE_SKIP_LOG"
trap 'rm -f "$log"' EXIT
# The Python package's tests get a virtual environment of their own under target/ (made once).
# It is made first: PyTorch's CUDA wheels in it bring NVRTC, with which the Rust tests compile the
# GPU kernels (no GPU needed for that; tests that need one say they did not run).
venv=target/py-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q maturin numpy scipy scikit-learn pandas pytest onnx onnxruntime pyarrow torch safetensors
nvrtc=$(ls -d "$venv"/lib/python3*/site-packages/nvidia/cu*/lib 2>/dev/null | head -1 || true)
if [ -n "$nvrtc" ]; then
  export LD_LIBRARY_PATH="$PWD/$nvrtc${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

status=0
cargo test --release --workspace 2>&1 | tee "$log" || status=$?
read -r rust_passed rust_failed < <(awk '/^test result:/ { p += $4; f += $6 } END { print p + 0, f + 0 }' "$log")

# The package installed from crates/ae-py (maturin builds it with cargo), then pytest.
"$venv/bin/pip" install -q --force-reinstall --no-deps ./crates/ae-py
py_status=0
# With them, the GPU kernels compiled for the CPU and checked against PyTorch (no GPU needed).
(cd crates/ae-py && AE_BIN="$PWD/../../target/release/ae" "../../$venv/bin/python" -m pytest -q tests ../ae-core/tests/cuda_on_cpu) 2>&1 | tee "$log" || py_status=$?
py_passed=$(grep -oE '[0-9]+ passed' "$log" | tail -1 | grep -oE '[0-9]+' || echo 0)
py_failed=$(grep -oE '[0-9]+ failed' "$log" | tail -1 | grep -oE '[0-9]+' || echo 0)
py_skipped=$(grep -oE '[0-9]+ skipped' "$log" | tail -1 | grep -oE '[0-9]+' || echo 0)
rust_skipped=$(wc -l < "$AE_SKIP_LOG")

if [ "$rust_skipped" -gt 0 ]; then
  echo "checks that did not run:"
  sed 's/^/  /' "$AE_SKIP_LOG"
fi
rust_passed=$((rust_passed - rust_skipped))
echo "rust: ${rust_passed} passed, ${rust_failed} failed, ${rust_skipped} skipped"
echo "python: ${py_passed} passed, ${py_failed} failed, ${py_skipped} skipped"
echo "total: $((rust_passed + py_passed)) passed, $((rust_failed + py_failed)) failed, $((rust_skipped + py_skipped)) skipped"
[ "$status" -eq 0 ] && [ "$py_status" -eq 0 ]
