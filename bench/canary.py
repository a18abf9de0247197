"""The canary's online comparison: how often it rolls back a challenger as good as the champion, how often
it catches a worse one, and what the interval costs, side by side with ``scipy.stats.permutation_test``.

The data: binary classifiers whose positive-class score is a logistic of ``separation * (2y - 1)`` plus
standard normal noise, on balanced labels (roc_auc 0.998 at separation 2, 0.92 at 1, 0.84 at 0.7), and
regressors whose errors are normal, or for the same mean absolute error of 1.0 mostly 0.2 and one in ten
8.2. "alike" arms come from one distribution (the champion retrained on the same data); "same mae" gives
both the same metric with differently spread errors; "worse" is worse. Arms have the sizes a canary gives
them: 10% of traffic (270 champion rows, 30 challenger rows) and 50% (150 and 150). Each rule rolls back
at 95%:
- ``challenger CI``: the challenger's own bootstrap interval (``metric_interval``) must reach the
  champion's value (the rule before 2026-11-26);
- ``gain interval``: ``gain_interval``, the interval of the gain that inverts a studentized permutation
  test over both arms' rows, must reach 0;
- scipy's ``permutation_test`` (independent samples, one-sided, its statistic the difference of
  scikit-learn's metric per resample, not studentized) rolls back at p < 0.025; it is timed and compared
  on the first canaries of each row that fit in ``--scipy-seconds`` (all of them where it is fast).

Usage: python bench/canary.py [--canaries 300] [--scipy-seconds 60] [--resamples 2000]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time
from functools import partial

import numpy as np
import scipy
from scipy import stats

from mlops_assets.evaluation.confidence import gain_interval, metric_interval
from mlops_assets.model.metrics import METRICS, gain


def classifier(rng: np.random.Generator, rows: int, separation: float):
    y = rng.integers(0, 2, rows)
    score = 1 / (1 + np.exp(-(separation * (2 * y - 1) + rng.normal(0, 1, rows))))
    return y, (score > 0.5).astype(int), np.column_stack([1 - score, score])


def regressor(rng: np.random.Generator, rows: int, errors: str, mae: float = 1.0):
    y = rng.normal(10, 3, rows)
    if errors == "normal":
        error = rng.normal(0, mae * np.sqrt(np.pi / 2), rows)  # E|error| = mae
    else:  # "mostly small": 0.2 nine times in ten, else 8.2, either sign; E|error| = 1.0
        error = np.where(rng.random(rows) < 0.9, 0.2, 8.2) * rng.choice([-1, 1], rows)
    return y, y + error, None


CLASSIFIER_CASES = [
    ("alike, roc_auc 0.998 (as the bundled example)", partial(classifier, separation=2.0), None),
    ("alike, roc_auc 0.92", partial(classifier, separation=1.0), None),
    ("worse: roc_auc 0.84 vs 0.92", partial(classifier, separation=1.0), partial(classifier, separation=0.7)),
]
CASES = {  # metric: [(case, champion's rows, challenger's rows: the champion's where None)]
    "roc_auc": CLASSIFIER_CASES,
    "accuracy": CLASSIFIER_CASES,
    "mae": [
        ("alike, normal errors", partial(regressor, errors="normal"), None),
        (
            "same mae, challenger errors 0.2 or 8.2",
            partial(regressor, errors="normal"),
            partial(regressor, errors="mostly small"),
        ),
        ("worse: mae 1.25 vs 1.0", partial(regressor, errors="normal"), partial(regressor, errors="normal", mae=1.25)),
    ],
}
SPLITS = [(270, 30), (150, 150)]


def scipy_rolls_back(metric: str, champion, challenger, resamples: int, seed: int) -> bool:
    """scipy deals row indices between the arms again and calls the statistic once per deal."""
    y, pred = (np.concatenate([champion[i], challenger[i]]) for i in range(2))
    score = None if champion[2] is None else np.concatenate([champion[2], challenger[2]])
    compute = METRICS[metric].compute

    def on(rows):
        return compute(y[rows], pred[rows], None if score is None else score[rows])

    def challenger_gain(champion_rows, challenger_rows):
        return gain(metric, on(challenger_rows), on(champion_rows))

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
    parser.add_argument("--scipy-seconds", type=float, default=60.0)
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()
    print(
        f"{datetime.date.today()}, {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}; {args.canaries} canaries per row, "
        f"{args.resamples} resamples; scipy on the first that fit in {args.scipy_seconds:.0f} s per row"
    )
    print()
    print(
        "| metric | case | champion / challenger rows | rolled back: challenger CI | rolled back: gain interval "
        "| rolled back: scipy | same decision as scipy | gain interval ms | scipy ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for metric, cases in CASES.items():
        for case, champion_arm, challenger_arm in cases:
            for champion_rows, challenger_rows in SPLITS:
                rng = np.random.default_rng(0)
                old, new, ours_ms, scipy_ms, scipy_back, agree = [], [], [], [], [], []
                for i in range(args.canaries):
                    champion = champion_arm(rng, champion_rows)
                    challenger = (challenger_arm or champion_arm)(rng, challenger_rows)
                    _, low, high = metric_interval(metric, *challenger, n_boot=args.resamples, seed=i)
                    best = high if METRICS[metric].higher_is_better else low
                    old.append(gain(metric, best, METRICS[metric].compute(*champion)) < 0)
                    started = time.perf_counter()
                    new.append(gain_interval(metric, champion, challenger, n_perm=args.resamples, seed=i)[2] < 0)
                    ours_ms.append((time.perf_counter() - started) * 1000)
                    if sum(scipy_ms) < args.scipy_seconds * 1000:
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
