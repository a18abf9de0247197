"""Performance before labels: the metric estimated from served probabilities against the realised one.

A binary world with known labels: P(y = 1 | x) = sigmoid(2 x1 - 1.5 x2 + x1 x2 / 2); a gradient-boosting model
is trained on 4,000 reference rows and calibrated (``mlops_assets.monitoring.estimation``) on a 2,000-row
holdout. Then windows of N rows each, in two scenarios:

- covariate shift: x1's mean moves 0, 0.5, 1.0, 1.5, 2.0 std; the relation stays (CBPE's assumption holds).
- concept change: the inputs stay; the label's relation turns, x1's coefficient going 2, 1, 0, -1, -2.

A multiclass world the same way: four classes, P(y = k | x) the softmax of ``MULTICLASS_LOGITS @ [x1, x2, x3]``
(x1's column scaled by the concept setting, 1 to -1); accuracy only, ours from the winning class's probability
alone (what the inference log keeps), NannyML's from every class's.

Per window: the realised accuracy and roc_auc (labels known), our estimate with its std (sampling and
calibration) and the calibration's part, and NannyML's CBPE (fitted on the same holdout, one chunk per window)
when ``--nannyml PYTHON`` names a Python with nannyml installed (it runs there in a subprocess; nannyml is no
dependency of this project).

Usage: python bench/estimation.py [--rows 2000] [--nannyml /tmp/nml/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import accuracy_score, roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mlops_assets.monitoring.estimation import Calibrator, estimate

SHIFTS = [0.0, 0.5, 1.0, 1.5, 2.0]
CONCEPTS = [2.0, 1.0, 0.0, -1.0, -2.0]
MULTICLASS_CONCEPTS = [1.0, 0.5, 0.0, -0.5, -1.0]
MULTICLASS_LOGITS = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [-1.5, -1.5, 1.0], [0.0, 0.0, -1.5]])

NANNYML = """
import json, sys
import pandas as pd
import nannyml as nml
reference, analysis, rows = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2]), int(sys.argv[3])
metrics = sys.argv[4].split(",")
classes = sorted(int(c[1:]) for c in reference if c[0] == "p" and c[1:].isdigit())
proba = {k: f"p{k}" for k in classes} if classes else "p"
kind = "classification_multiclass" if classes else "classification_binary"
cbpe = nml.CBPE(y_pred_proba=proba, y_pred="pred", y_true="y", metrics=metrics, chunk_size=rows, problem_type=kind)
cbpe.fit(reference)
frame = cbpe.estimate(analysis).filter(period="analysis").to_df()
print(json.dumps({m: frame[(m, "value")].tolist() for m in metrics}))
"""


def world(rng, rows, shift=0.0, concept=2.0):
    x = rng.normal(0, 1, (rows, 2))
    x[:, 0] += shift
    logit = concept * x[:, 0] - 1.5 * x[:, 1] + x[:, 0] * x[:, 1] / 2
    return x, (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)


def multiclass_world(rng, rows, shift=0.0, concept=1.0):
    x = rng.normal(0, 1, (rows, 3))
    x[:, 0] += shift
    logits = x @ (MULTICLASS_LOGITS * [concept, 1.0, 1.0]).T
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    return x, (rng.random((rows, 1)) > np.cumsum(proba, axis=1)).sum(axis=1)


def nannyml_estimates(
    python: str, holdout: pd.DataFrame, windows: list[pd.DataFrame], rows: int, metrics: tuple[str, ...]
) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        holdout.to_parquet(f"{tmp}/reference.parquet")
        pd.concat(windows).drop(columns="y").to_parquet(f"{tmp}/analysis.parquet")
        env = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1"}
        done = subprocess.run(
            [
                python,
                "-c",
                NANNYML,
                f"{tmp}/reference.parquet",
                f"{tmp}/analysis.parquet",
                str(rows),
                ",".join(metrics),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def served(model, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """What the log keeps of each row (the positive class's probability, or the winning class's), and the
    rows as NannyML reads them (every class's probability)."""
    proba = model.predict_proba(x)
    if proba.shape[1] == 2:
        return proba[:, 1], pd.DataFrame({"p": proba[:, 1], "pred": proba.argmax(axis=1), "y": y})
    frame = pd.DataFrame({f"p{k}": proba[:, k] for k in range(proba.shape[1])})
    return proba.max(axis=1), frame.assign(pred=proba.argmax(axis=1), y=y)


def realised(metric: str, logged: np.ndarray, frame: pd.DataFrame) -> float:
    if metric == "accuracy":
        return accuracy_score(frame["y"], frame["pred"])
    return roc_auc_score(frame["y"], logged)


def calibrated(model, world, rng) -> tuple[Calibrator, pd.DataFrame]:
    """Our calibration on a 2,000-row holdout, and the holdout as NannyML reads it."""
    x, y = world(rng, 2000)
    return Calibrator(model.predict_proba(x), y), served(model, x, y)[1]


def table(title: str, model, holdout, world, settings: list[dict], metrics: tuple[str, ...], args, rng) -> None:
    """One scenario: a window per setting, our estimate and NannyML's beside the realised metric."""
    calibrator, reference = holdout
    windows, lines = [], []
    for setting in settings:
        logged, frame = served(model, *world(rng, args.rows, **setting))
        windows.append(frame)
        started = time.perf_counter()
        ours = [estimate(m, logged, calibrator, 0.95) for m in metrics]
        elapsed = time.perf_counter() - started
        lines.append((next(iter(setting.values())), [realised(m, logged, frame) for m in metrics], ours, elapsed))
    nml = nannyml_estimates(args.nannyml, reference, windows, args.rows, metrics) if args.nannyml else None
    print(f"\n{title}, {args.rows} rows per window")
    header = "".join(f" {m} realised | ours ± std | of which calibration | NannyML |" for m in metrics)
    print(f"| window |{header} ours s |\n|---|" + "---|" * (4 * len(metrics) + 1))
    for i, (value, truth, ours, elapsed) in enumerate(lines):
        cells = "".join(
            f" {truth[j]:.4f} | {ours[j].value:.4f} ± {ours[j].std:.4f} | {ours[j].calibration_std:.4f} | "
            f"{nml[m][i] if nml else float('nan'):.4f} |"
            for j, m in enumerate(metrics)
        )
        print(f"| {value:+.1f} |{cells} {elapsed:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--nannyml", help="a Python with nannyml installed")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for kind, world_of_kind, concepts, metrics in (
        ("Binary", world, CONCEPTS, ("accuracy", "roc_auc")),
        ("Multiclass", multiclass_world, MULTICLASS_CONCEPTS, ("accuracy",)),
    ):
        model = GradientBoostingClassifier(random_state=0).fit(*world_of_kind(rng, 4000))
        holdout = calibrated(model, world_of_kind, rng)
        for scenario, settings in (
            ("covariate shift (x1 mean)", [{"shift": s} for s in SHIFTS]),
            ("concept change (x1 coefficient)", [{"concept": c} for c in concepts]),
        ):
            table(f"{kind}, {scenario}", model, holdout, world_of_kind, settings, metrics, args, rng)


if __name__ == "__main__":
    main()
