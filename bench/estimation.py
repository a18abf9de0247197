"""Performance before labels: the metric estimated from served probabilities against the realised one.

A binary world with known labels: P(y = 1 | x) = sigmoid(2 x1 - 1.5 x2 + x1 x2 / 2); a gradient-boosting model
is trained on 4,000 reference rows and calibrated (``mlops_assets.monitoring.estimation``) on a 2,000-row
holdout. Then windows of N rows each, in two scenarios:

- covariate shift: x1's mean moves 0, 0.5, 1.0, 1.5, 2.0 std; the relation stays (CBPE's assumption holds).
- concept change: the inputs stay; the label's relation turns, x1's coefficient going 2, 1, 0, -1, -2.

Per window: the realised accuracy and roc_auc (labels known), our estimate with its std, and NannyML's CBPE
(fitted on the same holdout, one chunk per window) when ``--nannyml PYTHON`` names a Python with nannyml
installed (it runs there in a subprocess; nannyml is no dependency of this project).

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

NANNYML = """
import json, sys
import pandas as pd
import nannyml as nml
reference, analysis, rows = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2]), int(sys.argv[3])
cbpe = nml.CBPE(y_pred_proba="p", y_pred="pred", y_true="y", metrics=["accuracy", "roc_auc"],
                chunk_size=rows, problem_type="classification_binary")
cbpe.fit(reference)
frame = cbpe.estimate(analysis).filter(period="analysis").to_df()
print(json.dumps({m: frame[(m, "value")].tolist() for m in ("accuracy", "roc_auc")}))
"""


def world(rng, rows, shift=0.0, concept=2.0):
    x = rng.normal(0, 1, (rows, 2))
    x[:, 0] += shift
    logit = concept * x[:, 0] - 1.5 * x[:, 1] + x[:, 0] * x[:, 1] / 2
    return x, (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)


def nannyml_estimates(python: str, holdout: pd.DataFrame, windows: list[pd.DataFrame], rows: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        holdout.to_parquet(f"{tmp}/reference.parquet")
        pd.concat(windows).drop(columns="y").to_parquet(f"{tmp}/analysis.parquet")
        env = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1"}
        done = subprocess.run(
            [python, "-c", NANNYML, f"{tmp}/reference.parquet", f"{tmp}/analysis.parquet", str(rows)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--nannyml", help="a Python with nannyml installed")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    model = GradientBoostingClassifier(random_state=0).fit(*world(rng, 4000))
    x, y = world(rng, 2000)
    p = model.predict_proba(x)[:, 1]
    holdout = pd.DataFrame({"p": p, "pred": (p > 0.5).astype(int), "y": y})
    calibrator = Calibrator(p, y)
    for scenario, settings in (
        ("covariate shift (x1 mean)", [{"shift": s} for s in SHIFTS]),
        ("concept change (x1 coefficient)", [{"concept": c} for c in CONCEPTS]),
    ):
        windows, rows = [], []
        for setting in settings:
            x, y = world(rng, args.rows, **setting)
            p = model.predict_proba(x)[:, 1]
            windows.append(pd.DataFrame({"p": p, "pred": (p > 0.5).astype(int), "y": y}))
            started = time.perf_counter()
            ours = [estimate(m, p, calibrator, 0.95) for m in ("accuracy", "roc_auc")]
            elapsed = time.perf_counter() - started
            realised = [accuracy_score(y, p > 0.5), roc_auc_score(y, p)]
            rows.append((next(iter(setting.values())), realised, ours, elapsed))
        nml = nannyml_estimates(args.nannyml, holdout, windows, args.rows) if args.nannyml else None
        print(f"\n{scenario}, {args.rows} rows per window")
        print(
            "| window | accuracy realised | ours (± std) | NannyML | roc_auc realised | ours (± std) | NannyML "
            "| ours s |\n|---|---|---|---|---|---|---|---|"
        )
        for i, (value, realised, ours, elapsed) in enumerate(rows):
            theirs = [f"{nml[m][i]:.4f}" if nml else "-" for m in ("accuracy", "roc_auc")]
            print(
                f"| {value:+.1f} | {realised[0]:.4f} | {ours[0].value:.4f} ± {ours[0].std:.4f} | {theirs[0]} "
                f"| {realised[1]:.4f} | {ours[1].value:.4f} ± {ours[1].std:.4f} | {theirs[1]} | {elapsed:.3f} |"
            )


if __name__ == "__main__":
    main()
