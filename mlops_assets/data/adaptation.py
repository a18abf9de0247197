"""Covariate-shift adaptation: importance weights that make the training rows look like a drifted window.

When the inputs drift and no labels have arrived, a retraining can answer the drift only by weighting the
training rows by w(x) = p_window(x) / p_reference(x). A logistic regression that tells reference rows (0) from
window rows (1) estimates it: its odds are w(x) * n_window / n_reference, so w = odds * n_reference / n_window.
Numeric inputs enter standardised on the reference together with their squares, because the true log-ratio of
a Gaussian mean shift or spread change is quadratic; categories enter one-hot on the reference's categories.

Weighting only moves mass between rows the training data has: a category, null or column the window has and
the reference lacks cannot be created, and weights piled on a few rows leave too small a training set to trust.
``adaptation_plan`` checks both before anything trains. sklearn and pandas are imported inside the functions:
this module is imported by the asset definitions, whose load time every Dagster process pays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops_assets.errors import DataError
from mlops_assets.naming import MISSING_CATEGORY

SUPPORT_TOLERANCE = 0.01  # window share of a category (or of nulls) unseen in training that is still ignored
PRESENT = "<present>"  # the state of a non-null numeric value in the support check
REGULARISATION_C = 1.0  # inverse L2 strength: a few dozen coefficients against thousands of rows need little shrinkage


@dataclass(frozen=True)
class _Encoding:
    """How one input column enters the classifier, fixed on the reference."""

    column: str
    dtype: str
    center: float = 0.0
    scale: float = 1.0
    categories: tuple[str, ...] = ()

    def design(self, values: Any) -> np.ndarray:
        """(rows, k) block: one-hot categories (others all zero), or z, its missing indicator and z^2."""
        if self.dtype == "str":
            import pandas as pd

            codes = pd.Index(self.categories).get_indexer(_as_categories(values))
            return (codes[:, None] == np.arange(len(self.categories))[None, :]).astype(float)
        x = _as_float(values)
        missing = np.isnan(x)
        z = np.where(missing, 0.0, (x - self.center) / self.scale)
        return np.column_stack([z, missing, *([z**2] if self.dtype != "bool" else [])]).astype(float)


@dataclass(frozen=True, eq=False)
class DensityRatio:
    """The fitted estimate of p_window(x) / p_reference(x); ``intercept`` carries the prior correction."""

    encodings: tuple[_Encoding, ...]
    coefficients: np.ndarray
    intercept: float
    max_weight: float

    def log_ratio(self, columns: Mapping[str, Any]) -> np.ndarray:
        """Estimated log p_window(x) / p_reference(x) per row, unclipped."""
        return _design(self.encodings, columns) @ self.coefficients + self.intercept

    def weights(self, columns: Mapping[str, Any]) -> np.ndarray:
        """Importance weights of these rows (training or holdout): mean 1 over them, none above ``max_weight``."""
        log_ratio = self.log_ratio(columns)
        if log_ratio.size == 0:
            return log_ratio
        relative = np.maximum(log_ratio - log_ratio.max(), -700.0)  # exp stays finite and positive
        return _capped_mean_one(np.exp(relative), self.max_weight)


@dataclass(frozen=True)
class AdaptationPlan:
    """Whether weighting can answer the drift; ``reasons`` say why not, naming the column or the numbers."""

    feasible: bool
    reasons: list[str]
    effective_sample_size: float | None = None
    effective_share: float | None = None
    density_ratio: DensityRatio | None = None  # None when the support check failed before fitting


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's (sum w)^2 / sum w^2: how many unweighted rows carry as much information as these weighted ones."""
    w = np.asarray(weights, dtype=float)
    square_sum = float(np.sum(w**2))
    return float(np.sum(w)) ** 2 / square_sum if square_sum > 0 else 0.0


def fit_density_ratio(
    reference: Mapping[str, Any],
    target: Mapping[str, Any],
    dtypes: Mapping[str, str],
    max_weight: float = 20.0,
    seed: int = 0,
    max_rows: int = 50_000,
) -> DensityRatio:
    """Fit the classifier on at most ``max_rows`` rows of each side, drawn with a seeded generator. It is fitted
    without class weights, so its odds include the sample-size prior n_window / n_reference, which the
    intercept then removes."""
    from sklearn.linear_model import LogisticRegression

    if max_weight <= 1:
        raise ValueError(f"max_weight {max_weight} must exceed 1: the weights have mean 1")
    _require_columns(reference, "reference", dtypes)
    _require_columns(target, "window", dtypes)
    encodings = tuple(_encoding(column, dtype, reference[column]) for column, dtype in dtypes.items())
    rng = np.random.default_rng(seed)
    sides = [_subsample(data, dtypes, max_rows, rng) for data in (reference, target)]
    x = np.vstack([_design(encodings, side) for side in sides])
    n_reference, n_target = (_n_rows(side, dtypes) for side in sides)
    y = np.r_[np.zeros(n_reference), np.ones(n_target)]
    model = LogisticRegression(C=REGULARISATION_C, solver="lbfgs", max_iter=1000).fit(x, y)
    prior = math.log(n_reference / n_target)
    return DensityRatio(encodings, model.coef_[0].copy(), float(model.intercept_[0]) + prior, max_weight)


def adaptation_plan(
    reference: Mapping[str, Any],
    target: Mapping[str, Any],
    dtypes: Mapping[str, str],
    min_effective_share: float,
    max_weight: float,
    seed: int = 0,
) -> AdaptationPlan:
    """Check the window's support against the reference, then fit and weigh the reference rows. The effective
    share is that of the capped weights training will use; capping keeps it at or above 1 / max_weight, so
    the check can only fail where min_effective_share exceeds that."""
    _require_columns(reference, "reference", dtypes)
    reasons = _support_reasons(reference, target, dtypes)
    if reasons:
        return AdaptationPlan(False, reasons)
    ratio = fit_density_ratio(reference, target, dtypes, max_weight, seed)
    n = _n_rows(reference, dtypes)
    ess = effective_sample_size(ratio.weights(reference))
    if ess / n < min_effective_share:
        reasons.append(
            f"effective sample size {ess:,.0f} of {n:,} training rows ({ess / n:.1%}) is under "
            f"training.adaptation.min_effective_share {100 * min_effective_share:g}%"
        )
    return AdaptationPlan(not reasons, reasons, ess, ess / n, ratio)


def _support_reasons(reference: Mapping[str, Any], target: Mapping[str, Any], dtypes: Mapping[str, str]) -> list[str]:
    if _n_rows(target, dtypes) == 0:
        return ["the window has no rows"]
    reasons = []
    for column, dtype in dtypes.items():
        if column not in target:
            reasons.append(f"column {column} is absent from the window")
            continue
        states, counts = np.unique(_states(target[column], dtype), return_counts=True)
        if list(states) == [MISSING_CATEGORY]:
            reasons.append(f"column {column} is missing (all null) in the window")
            continue
        seen = set(_states(reference[column], dtype).tolist())
        for state, share in zip(states.tolist(), counts / counts.sum(), strict=True):
            if state not in seen and share > SUPPORT_TOLERANCE:
                reasons.append(_unseen_reason(column, state, share))
    return reasons


def _unseen_reason(column: str, state: str, share: float) -> str:
    plural = {MISSING_CATEGORY: "nulls", PRESENT: "values"}.get(state)
    what = (
        f"{plural} of column {column} never occur" if plural else f"category {state!r} of column {column} never occurs"
    )
    return (
        f"{what} in the training data ({share:.1%} of the window): weighting cannot create {'them' if plural else 'it'}"
    )


def _states(values: Any, dtype: str) -> np.ndarray:
    """Categories for a categorical column; null or present for a numeric one (whose range the weights cover)."""
    if dtype == "str":
        return _as_categories(values)
    return np.where(np.isnan(_as_float(values)), MISSING_CATEGORY, PRESENT)


def _capped_mean_one(ratio: np.ndarray, max_weight: float) -> np.ndarray:
    """min(s * ratio, max_weight) with the scale s that gives mean 1. Clipping then renormalising would lift
    the clipped weights back above the cap; instead the k largest are capped and the rest scaled to make up
    the mean, for the smallest k whose next largest weight then stays under the cap."""
    n = len(ratio)
    descending = np.sort(ratio)[::-1]
    rest = np.cumsum(descending[::-1])[::-1]  # rest[k]: sum of all but the k largest
    scale = (n - max_weight * np.arange(n)) / rest
    k = int(np.argmax(scale * descending <= max_weight))
    return np.minimum(scale[k] * ratio, max_weight)


def _encoding(column: str, dtype: str, values: Any) -> _Encoding:
    if dtype == "str":
        return _Encoding(column, dtype, categories=tuple(sorted(set(_as_categories(values).tolist()))))
    x = _as_float(values)
    present = x[~np.isnan(x)]
    if present.size == 0:
        return _Encoding(column, dtype)
    return _Encoding(column, dtype, float(present.mean()), float(present.std()) or 1.0)


def _design(encodings: tuple[_Encoding, ...], columns: Mapping[str, Any]) -> np.ndarray:
    return np.hstack([e.design(columns[e.column]) for e in encodings])


def _subsample(data: Mapping[str, Any], dtypes: Mapping[str, str], max_rows: int, rng: np.random.Generator) -> dict:
    n = _n_rows(data, dtypes)
    rows = np.sort(rng.choice(n, max_rows, replace=False)) if n > max_rows else np.arange(n)
    return {column: np.asarray(data[column])[rows] for column in dtypes if column in data}


def _require_columns(data: Mapping[str, Any], name: str, dtypes: Mapping[str, str]) -> None:
    if absent := [c for c in dtypes if c not in data]:
        raise DataError(f"the {name} lacks input columns {absent}: pass every column named in dtypes")


def _n_rows(data: Mapping[str, Any], dtypes: Mapping[str, str]) -> int:
    return next((len(data[c]) for c in dtypes if c in data), 0)


def _as_float(values: Any) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype == object:
        array = np.array([np.nan if v is None else v for v in array], dtype=float)
    return array.astype(np.float64, copy=False)


def _as_categories(values: Any) -> np.ndarray:
    """Categories compare as strings (as in ``features``); a null is the ``MISSING_CATEGORY`` category."""
    import pandas as pd

    series = pd.Series(np.asarray(values, dtype=object))
    return np.where(series.isna(), MISSING_CATEGORY, series.astype(str)).astype(object)
