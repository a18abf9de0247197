"""Permutation importance on the holdout, for any model that predicts from columns (scikit-learn or torch).

An input column's importance is how much the primary metric worsens when that column's values are shuffled
among the rows (the link between the column and the target broken, its distribution kept), averaged over
``n_repeats`` seeded shuffles. ``sklearn.inspection.permutation_importance`` needs an estimator with
``score`` on a feature matrix; a ``PipelineModel`` predicts from raw columns through its own transformer,
so the shuffling is done here on the columns themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlops_assets.model.metrics import METRICS, gain

N_REPEATS = 5  # shuffles per column
MAX_ROWS = 5_000  # holdout rows shuffled: enough to rank the columns, bounded cost on a large holdout


@dataclass(frozen=True)
class Importance:
    column: str
    mean: float  # worsening of the metric, positive when the model relied on the column
    std: float


def permutation_importance(
    score: Callable[[pd.DataFrame], float],
    frame: pd.DataFrame,
    columns: list[str],
    metric: str,
    n_repeats: int = N_REPEATS,
    seed: int = 0,
    max_rows: int = MAX_ROWS,
) -> list[Importance]:
    """Each column's worsening of ``metric`` (``score`` gives it on a frame), most important first.

    At most ``max_rows`` rows, drawn with ``seed``, are used; the same inputs always give the same result."""
    rng = np.random.default_rng(seed)
    if len(frame) > max_rows:
        frame = frame.iloc[np.sort(rng.choice(len(frame), max_rows, replace=False))]
    frame = frame.reset_index(drop=True)
    baseline = score(frame)
    result = []
    for column in columns:
        drops = []
        for _ in range(n_repeats):
            shuffled = frame.assign(**{column: frame[column].to_numpy()[rng.permutation(len(frame))]})
            drops.append(gain(metric, baseline, score(shuffled)))
        result.append(Importance(column, float(np.mean(drops)), float(np.std(drops))))
    return sorted(result, key=lambda i: -i.mean if np.isfinite(i.mean) else np.inf)


def model_score(model, target: str, metric: str) -> Callable[[pd.DataFrame], float]:
    """``metric`` of a ``PipelineModel`` on a frame that carries ``target``."""
    from mlops_assets.evaluation.holdouts import score

    def of(frame: pd.DataFrame) -> float:
        scored = score(model, frame, target)
        return METRICS[metric].compute(scored.y_true, scored.y_pred, scored.y_score)

    return of
