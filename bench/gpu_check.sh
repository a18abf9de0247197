#!/usr/bin/env bash
# The torch trainer on the CPU and, where there is one, on the CUDA device, side by side (bench/gpu_check.py):
# one command, under 5 minutes. Run it from anywhere: bash bench/gpu_check.sh [--rows N] [--epochs N]
# The interpreter is the checkout's .venv, else PYTHON, else python3 (a GPU image with torch, numpy and
# scikit-learn is enough).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
exec timeout 300 "$PYTHON" bench/gpu_check.py "$@"
