"""The torch trainer on the CPU and on a CUDA device, side by side: device, precision, epoch time, throughput
and the holdout roc_auc of the same spec trained on each.

A synthetic binary task: ``--rows`` training rows (default 200,000) and 20,000 holdout rows of ``--features``
(64) normal features, the label a noisy nonlinear function of them. ``TorchMLP`` (hidden layers 256 and 128,
batch 1024, ``--epochs`` 4) trains once on the CPU (where ``precision: auto`` is fp32) and, where
``torch.cuda.is_available()``, twice on the GPU: in the precision ``auto`` picks there (bf16 where the device has
it, else fp16 with loss scaling) and in fp32. Epoch time is the median epoch after the first (which pays for
CUDA's start-up); throughput is training rows per second of it. Without a CUDA device the GPU row says so.

Needs torch, numpy and scikit-learn only (the GPU image has no Dagster). Usage: bash bench/gpu_check.sh
(or python bench/gpu_check.py [--rows 200000] [--epochs 4]).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from serving import machine_line  # noqa: E402

PACKAGES = ("torch", "numpy", "scikit-learn")
HOLDOUT_ROWS = 20_000
SETTINGS = {"hidden_layers": [256, 128], "batch_size": 1024, "learning_rate": 1e-3, "seed": 0}


def synthetic(rows: int, features: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features)).astype(np.float32)
    w1, w2 = rng.normal(size=(2, features)) / np.sqrt(features)
    score = np.sin(2 * X @ w1) + 0.5 * (X @ w2) ** 2 + 0.5 * X[:, 0] * X[:, 1] + 0.3 * rng.normal(size=rows)
    return X, (score > np.median(score)).astype(int)


def train(device: str, precision: str, epochs: int, X, y, X_holdout, y_holdout) -> dict:
    from sklearn.metrics import roc_auc_score

    from mlops_assets.model.torch_mlp import TorchMLP

    model = TorchMLP("binary", **SETTINGS, epochs=epochs, device=device, precision=precision)
    started = time.perf_counter()
    model.fit(X, y)
    total = time.perf_counter() - started
    epoch_s = statistics.median(model.epoch_seconds_[1:] or model.epoch_seconds_)
    return {
        "device": model.device_used_,
        "precision": model.precision_used_,
        "epoch_s": epoch_s,
        "rows_per_s": len(X) / epoch_s,
        "roc_auc": roc_auc_score(y_holdout, model.predict_proba(X_holdout)[:, 1]),
        "fit_s": total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()

    import torch

    print(machine_line(f"{dt.datetime.now():%Y-%m-%d %H:%M}", PACKAGES, os.getloadavg()[0]), flush=True)
    cuda = torch.cuda.is_available()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; CUDA: ", end="")
    print(f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})" if cuda else "no CUDA device", flush=True)
    X, y = synthetic(args.rows + HOLDOUT_ROWS, args.features)
    data = (X[: args.rows], y[: args.rows], X[args.rows :], y[args.rows :])
    runs = [("cpu", "auto")] + ([("cuda", "auto"), ("cuda", "fp32")] if cuda else [])
    results = [train(device, precision, args.epochs, *data) for device, precision in runs]

    shape = f"{args.rows} rows x {args.features} features, {args.epochs} epochs"
    print(f"\n{shape}, MLP {SETTINGS['hidden_layers']}, batch {SETTINGS['batch_size']}; {HOLDOUT_ROWS} holdout rows\n")
    print("| device | precision | epoch s (median) | rows/s | holdout roc_auc | whole fit s |")
    print("|---|---|---|---|---|---|")
    for r in results:
        row = f"{r['epoch_s']:.2f} | {r['rows_per_s']:,.0f} | {r['roc_auc']:.4f} | {r['fit_s']:.1f}"
        print(f"| {r['device']} | {r['precision']} | {row} |")
    if not cuda:
        print("| cuda | - | not run: no CUDA device | | | |")
    print(f"\n1-minute load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
