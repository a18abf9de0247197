"""The canary's online comparison: how often it rolls back a challenger as good as the champion, how often
it catches a worse one, and what the interval costs, side by side with ``scipy.stats.permutation_test``.

The data: binary classifiers whose positive-class score is a logistic of ``separation * (2y - 1)`` plus
standard normal noise, on balanced labels. "alike" arms share a separation (the champion retrained on the
same data); "worse" gives the challenger a smaller one. Arms have the sizes a canary gives them: 10% of
traffic (270 champion rows, 30 challenger rows) and 50% (150 and 150). Each rule rolls back at 95%:
- ``challenger CI``: the challenger's own bootstrap interval (``metric_interval``) must reach the
  champion's value (the rule before 2026-11-26);
- ``gain interval``: ``gain_interval``, the interval of the gain that inverts a permutation test over both
  arms' rows, must reach 0.
scipy's ``permutation_test`` (independent samples, one-sided, its statistic the difference of
scikit-learn's metric per resample) rolls back at p < 0.025; it is timed and compared on the first
datasets of each case.

Usage: python bench/canary.py [--canaries 300] [--scipy-canaries 20] [--resamples 2000]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time

import numpy as np
import scipy
from scipy import stats

from mlops_assets.confidence import gain_interval, metric_interval
from mlops_assets.metrics import METRICS, gain

CASES = [  # (name, champion separation, challenger separation)
    ("alike, roc_auc 0.998 (as the bundled example)", 2.0, 2.0),
    ("alike, roc_auc 0.92", 1.0, 1.0),
    ("worse: roc_auc 0.84 vs 0.92", 1.0, 0.7),
]
SPLITS = [(270, 30), (150, 150)]


def arm(rng: np.random.Generator, rows: int, separation: float):
    y = rng.integers(0, 2, rows)
    score = 1 / (1 + np.exp(-(separation * (2 * y - 1) + rng.normal(0, 1, rows))))
    return y, (score > 0.5).astype(int), np.column_stack([1 - score, score])


def scipy_rolls_back(metric: str, champion, challenger, resamples: int, seed: int) -> bool:
    """scipy deals row indices between the arms again and calls the statistic once per deal."""
    y, pred, score = (np.concatenate([champion[i], challenger[i]]) for i in range(3))
    compute = METRICS[metric].compute

    def challenger_gain(champion_rows, challenger_rows):
        return gain(
            metric,
            compute(y[challenger_rows], pred[challenger_rows], score[challenger_rows]),
            compute(y[champion_rows], pred[champion_rows], score[champion_rows]),
        )

    split = len(champion[0])
    result = stats.permutation_test(
        (np.arange(split), np.arange(split, len(y))),
        challenger_gain,
        n_resamples=resamples,
        alternative="less",
        vectorized=False,
        random_state=seed,
    )
    return result.pvalue < 0.025


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--canaries", type=int, default=300)
    parser.add_argument("--scipy-canaries", type=int, default=20)
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()
    print(
        f"{datetime.date.today()}, {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}; {args.canaries} canaries per row, "
        f"{args.resamples} resamples; scipy on the first {args.scipy_canaries}"
    )
    print()
    print(
        "| metric | case | champion / challenger rows | rolled back: challenger CI | rolled back: gain interval "
        "| rolled back: scipy | same decision as scipy | gain interval ms | scipy ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for metric in ("roc_auc", "accuracy"):
        for case, separation, challenger_separation in CASES:
            for champion_rows, challenger_rows in SPLITS:
                rng = np.random.default_rng(0)
                old, new, ours_ms, scipy_ms, scipy_back, agree = [], [], [], [], [], []
                for i in range(args.canaries):
                    champion = arm(rng, champion_rows, separation)
                    challenger = arm(rng, challenger_rows, challenger_separation)
                    high = metric_interval(metric, *challenger, n_boot=args.resamples, seed=i)[2]
                    old.append(high < METRICS[metric].compute(*champion))
                    started = time.perf_counter()
                    new.append(gain_interval(metric, champion, challenger, n_perm=args.resamples, seed=i)[2] < 0)
                    ours_ms.append((time.perf_counter() - started) * 1000)
                    if i < args.scipy_canaries:
                        started = time.perf_counter()
                        scipy_back.append(scipy_rolls_back(metric, champion, challenger, args.resamples, i))
                        scipy_ms.append((time.perf_counter() - started) * 1000)
                        agree.append(scipy_back[-1] == new[-1])
                print(
                    f"| {metric} | {case} | {champion_rows} / {challenger_rows} | {np.mean(old):.1%} | "
                    f"{np.mean(new):.1%} | {np.mean(scipy_back):.0%} of {len(scipy_back)} | "
                    f"{sum(agree)} of {len(agree)} | {np.median(ours_ms):.1f} | {np.median(scipy_ms):.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
