#!/usr/bin/env bash
# Creates .venv with PyTorch CPU, NumPy and safetensors from PyPI: the reference for golden values
# and benchmarks, never a dependency of the product.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q -r bench/requirements.txt
.venv/bin/python -c "import torch; print('torch', torch.__version__)"
