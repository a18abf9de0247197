"""How often does the gate promote a model that is not better? The loop decides again at every label batch and
every drift event, so its error rate per decision is what a team lives with: measured here on the loop bench's
world (loop_world.py), many seeds, against the truth on a large fresh sample.

Each seed fits the spec's kind of model (scaled LogisticRegression on the bench's inputs) twice on the flipped
concept: a champion on ``--champion-rows`` labelled rows and a challenger on ``--challenger-rows``, as the concept
flip's v3 and v4 are. The gate's decision is the recent holdout's: the paired bootstrap interval of the roc_auc
gain on ``--holdout`` fresh rows, at the spec's default confidence, promotes when it lies above 0. The truth is
the gain on ``--truth`` fresh rows. A "not better" pair is one whose true gain is at most 0.

Usage: python bench/gate_calibration.py [--seeds 300] [--holdout 500] [--confidence 0.95]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

import numpy as np
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

sys.path.insert(0, str(Path(__file__).parent))
from loop_world import TARGET, World, draw
from serving import machine_line

from mlops_assets.evaluation.confidence import paired_gain_interval

FLIPPED = World(concept_flip=True)
NUMERIC = ["income", "debt_ratio", "utilization", "age"]


def fit(rows, rng: np.random.Generator, start_id: int):
    frame = draw(FLIPPED, rows, rng, start_id)
    encode = make_column_transformer((StandardScaler(), NUMERIC), (OneHotEncoder(), ["employment"]))
    return make_pipeline(encode, LogisticRegression(max_iter=1000)).fit(frame, frame[TARGET])


def decision(args, seed: int) -> tuple[bool, float]:
    """(promoted by the gate, true roc_auc gain) of one champion/challenger pair."""
    rng = np.random.default_rng(seed)
    champion = fit(args.champion_rows, rng, 0)
    challenger = fit(args.challenger_rows, rng, 1_000_000)
    holdout = draw(FLIPPED, args.holdout, rng, 2_000_000)
    y = holdout[TARGET].to_numpy()
    scored = [(m.predict(holdout), m.predict_proba(holdout)) for m in (champion, challenger)]
    _, low, _ = paired_gain_interval("roc_auc", y, *scored, confidence=args.confidence, seed=seed)
    truth = draw(FLIPPED, args.truth, rng, 3_000_000)
    aucs = [roc_auc_score(truth[TARGET], m.predict_proba(truth)[:, 1]) for m in (champion, challenger)]
    return bool(low > 0), aucs[1] - aucs[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=300)
    parser.add_argument("--champion-rows", type=int, default=800)
    parser.add_argument("--challenger-rows", type=int, default=4_800)
    parser.add_argument("--holdout", type=int, default=500, help="training.recent_holdout.rows' default")
    parser.add_argument("--truth", type=int, default=50_000)
    parser.add_argument("--confidence", type=float, default=0.95, help="training.recent_holdout.confidence")
    args = parser.parse_args()
    when = dt.datetime.now().isoformat(timespec="minutes")
    print(machine_line(when, ("scikit-learn", "numpy"), os.getloadavg()[0]))
    results = [decision(args, seed) for seed in range(args.seeds)]
    promoted = np.array([p for p, _ in results])
    gains = np.array([g for _, g in results])
    not_better = gains <= 0
    print(
        f"\n{args.seeds} pairs: champion on {args.champion_rows:,} rows, challenger on {args.challenger_rows:,}; "
        f"gate on {args.holdout:,} holdout rows at confidence {args.confidence}; truth on {args.truth:,} rows\n"
    )
    print("| pairs | count | promoted | share promoted | true gain, median (5% to 95%) |")
    print("|---|---|---|---|---|")
    for name, mask in (("not better (true gain <= 0)", not_better), ("better (true gain > 0)", ~not_better)):
        if not mask.any():
            continue
        low, mid, high = np.percentile(gains[mask], [5, 50, 95])
        share = promoted[mask].mean()
        print(
            f"| {name} | {mask.sum()} | {promoted[mask].sum()} | {share:.1%} | {mid:+.4f} ({low:+.4f} to {high:+.4f}) |"
        )
    print(f"\n1-minute load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
