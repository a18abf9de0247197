"""Whether the concept changed, told apart from label noise: a pure test over source and production rows.

A concept change is a change of what the inputs say about the label: the source teaches something today's
traffic no longer holds. Label noise changes labels too, but not what they depend on. The test asks whether
the labelled production rows teach what the source cannot:

- a cheap model (logistic regression; ridge for regression) is fit on the source rows, weighted to look like
  the production rows (importance weights, as for a drift), and scores every production row;
- the same kind of model is cross-fitted on the production rows (``FOLDS`` folds: each row is scored by a
  model that never saw it);
- the concept changed when, on the production rows, the production-fitted model is confidently better than
  the source-fitted one by more than ``MARGIN``.

They are compared on how they rank or decide (roc_auc for a binary target, accuracy for a multiclass one, r2
for regression), not on log loss. Symmetric label noise (zero-mean noise, for a number) leaves the ranking by
risk, the likeliest class and the expected value as they were, so a model fit on fewer, noisier rows cannot
beat one fit on many clean rows there; it does learn the noise's flatter probabilities, which log loss would
reward as a new concept. Under a reversed relationship the production-fitted model wins by far. The weights
keep a cheap model's misfit (a curve it cannot follow over all the source's inputs, and can over production's
narrower region) from counting as a change; the margin keeps a small local advantage from counting.

The interval is normal on paired differences (DeLong's for roc_auc), so the test costs ``FOLDS + 2`` fits of a
linear model on at most ``MAX_ROWS`` rows a side. scikit-learn and scipy are imported inside the functions:
the training-set assembly imports this module, and the asset definitions import that.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec

FOLDS = 5
MAX_ROWS = 5_000  # rows a side the models fit on (a seeded sample beyond it): bounds the test's time
MIN_ROWS = 50  # production rows below which a fold's model has too little to learn from
MIN_CLASS_ROWS = 10  # rows of each class a binary target needs on each side
MAX_WEIGHT = 20.0  # largest weight of a source row, as a multiple of the mean
MAX_CATEGORIES = 30  # most frequent categories of a text input that get a column each
# least gain that counts as a change, in each statistic's units
MARGIN = {"roc_auc": 0.02, "accuracy": 0.02, "r2": 0.02}


@dataclass(frozen=True)
class ConceptTest:
    """The test's verdict and its figures (``None`` where it could not be run); ``reason`` says it in words."""

    changed: bool
    metric: str  # roc_auc (binary), accuracy (multiclass) or r2 (regression)
    production_rows: int
    source_rows: int
    reason: str
    source_model: float | None = None  # the source-fitted model on the production rows
    production_model: float | None = None  # the cross-fitted production model on the same rows
    gain: float | None = None  # production_model less source_model
    low: float | None = None
    high: float | None = None
    margin: float | None = None

    def as_json(self) -> dict:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def spec_inputs(spec: PipelineSpec) -> dict[str, str]:
    """The spec's input columns and their schema dtypes, as ``concept_test`` takes them."""
    return {c: spec.schema_.columns[c].dtype for c in spec.input_columns}


def concept_test(
    source: pd.DataFrame,
    production: pd.DataFrame,
    inputs: Mapping[str, str],
    target: str,
    task: str,
    confidence: float = 0.95,
    seed: int = 0,
) -> ConceptTest:
    """Whether the labelled ``production`` rows follow another concept than the ``source`` rows.

    ``inputs`` maps each input column to its dtype (float, int, str or bool); ``task`` is binary, multiclass or
    regression. The same rows, settings and seed always give the same verdict.
    """
    metric = {"binary": "roc_auc", "multiclass": "accuracy"}.get(task, "r2")
    rng = np.random.default_rng(seed)
    source, production = (_sample(frame, rng) for frame in (source, production))
    untestable = _untestable(source, production, target, task)
    if untestable:
        return ConceptTest(False, metric, len(production), len(source), f"concept not tested: {untestable}")
    x_source, x_production = _design(source, production, inputs)
    y_source, y_production = _targets(source[target], production[target], task)
    like_production = _importance(x_source, x_production)
    from_source = _fit(task, x_source, y_source, like_production)(x_production)
    cross_fitted = np.empty_like(from_source)
    folds = rng.permutation(len(production)) % FOLDS
    for fold in range(FOLDS):
        inside = folds == fold
        cross_fitted[inside] = _fit(task, x_production[~inside], y_production[~inside])(x_production[inside])
    source_value, production_value, difference, error = _paired(metric, y_production, from_source, cross_fitted)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    low, high = difference - z * error, difference + z * error
    changed = bool(low > MARGIN[metric])
    figures = (
        f"on {len(production):,} labelled production rows, a model fit on them ({FOLDS}-fold cross-fitted) has "
        f"{metric} {production_value:.4f} against {source_value:.4f} for one fit on {len(source):,} source rows "
        f"(gain {difference:+.4f}, CI {low:+.4f} to {high:+.4f})"
    )
    reason = (
        f"the concept changed: {figures}"
        if changed
        else f"the concept holds: {figures}, not confidently above {MARGIN[metric]}"
    )
    return ConceptTest(
        changed,
        metric,
        len(production),
        len(source),
        reason,
        source_value,
        production_value,
        difference,
        low,
        high,
        MARGIN[metric],
    )


def _sample(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= MAX_ROWS:
        return frame.reset_index(drop=True)
    return frame.iloc[np.sort(rng.choice(len(frame), MAX_ROWS, replace=False))].reset_index(drop=True)


def _untestable(source: pd.DataFrame, production: pd.DataFrame, target: str, task: str) -> str:
    """Why the rows cannot tell ("" when they can)."""
    if len(production) < MIN_ROWS:
        return f"{len(production)} labelled production rows, fewer than {MIN_ROWS}"
    if len(source) < MIN_ROWS:
        return f"{len(source)} source rows, fewer than {MIN_ROWS}"
    if task == "binary":
        for name, frame in (("production", production), ("source", source)):
            counts = frame[target].value_counts()
            if len(counts) < 2 or counts.min() < MIN_CLASS_ROWS:
                return f"the {name} rows have fewer than {MIN_CLASS_ROWS} rows of each class"
    if task == "regression" and not np.var(production[target].to_numpy(float)) > 0:
        return "the production rows' target is constant"
    return ""


def _design(source: pd.DataFrame, production: pd.DataFrame, inputs: Mapping[str, str]) -> tuple[np.ndarray, ...]:
    """Both sides encoded alike: a number standardised over both sides, with its square (so a linear model
    can follow a curved boundary) and a missing indicator; a text input one-hot on its most frequent values."""
    both = pd.concat([source[list(inputs)], production[list(inputs)]], ignore_index=True)
    blocks = []
    for column, dtype in inputs.items():
        values = both[column]
        if dtype == "str":
            text = values.astype("string").fillna("<missing>")
            kept = text.value_counts().index[:MAX_CATEGORIES]
            blocks.append((text.to_numpy()[:, None] == kept.to_numpy()[None, :]).astype(float))
            continue
        x = pd.to_numeric(values, errors="coerce").to_numpy(float, na_value=np.nan)
        missing = np.isnan(x)
        present = x[~missing]
        centre, scale = (present.mean(), present.std()) if len(present) else (0.0, 0.0)
        z = np.where(missing, 0.0, (x - centre) / (scale if scale > 0 else 1.0))
        blocks.append(np.column_stack([z, z**2, missing]) if dtype != "bool" else np.column_stack([z, missing]))
    design = np.hstack(blocks) if blocks else np.zeros((len(both), 1))
    return design[: len(source)], design[len(source) :]


def _targets(source: pd.Series, production: pd.Series, task: str) -> tuple[np.ndarray, np.ndarray]:
    """Class indices shared by both sides (sorted labels: for binary, 1 is the larger label), or floats."""
    if task == "regression":
        return source.to_numpy(float), production.to_numpy(float)
    codes, _ = pd.factorize(pd.concat([source, production], ignore_index=True), sort=True)
    return codes[: len(source)], codes[len(source) :]


def _importance(x_source: np.ndarray, x_production: np.ndarray) -> np.ndarray:
    """Weights that make the source rows look like the production rows: p_production(x) / p_source(x), from a
    logistic regression telling them apart, scaled to mean 1 and capped at ``MAX_WEIGHT``. The source model
    then learns what the source says where production's rows are, so a cheap model's misfit elsewhere (a
    curved relationship it cannot follow over all the source's inputs) is not mistaken for a new concept."""
    from sklearn.linear_model import LogisticRegression

    x = np.vstack([x_source, x_production])
    side = np.r_[np.zeros(len(x_source)), np.ones(len(x_production))]
    log_odds = LogisticRegression(C=1.0, max_iter=500).fit(x, side).decision_function(x_source)
    ratio = np.exp(log_odds - log_odds.max())  # the odds, up to a constant the mean removes
    return np.minimum(ratio / ratio.mean(), MAX_WEIGHT)


def _fit(
    task: str, x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """A model fit on (x, y), as a function of rows: the score of class 1 (binary), a class index
    (multiclass) or a value (regression)."""
    from sklearn.linear_model import LogisticRegression, Ridge

    if task == "regression":
        return Ridge(alpha=1.0).fit(x, y, sample_weight=weights).predict
    if len(np.unique(y)) < 2:  # a multiclass fold of one class can only say that class
        return lambda rows: np.full(len(rows), y[0])
    model = LogisticRegression(C=1.0, max_iter=500).fit(x, y, sample_weight=weights)
    return (lambda rows: model.predict_proba(rows)[:, 1]) if task == "binary" else model.predict


def _paired(metric: str, y: np.ndarray, source: np.ndarray, production: np.ndarray) -> tuple[float, ...]:
    """(source's value, production's value, the gain, its standard error) on the same rows ``y``."""
    if metric == "roc_auc":
        return _paired_auc(y, source, production)
    if metric == "accuracy":
        right_source, right_production = (source == y).astype(float), (production == y).astype(float)
        difference = right_production - right_source
        return right_source.mean(), right_production.mean(), difference.mean(), _standard_error(difference)
    spread = np.var(y)  # r2 = 1 - mean squared error / spread: the gain is the paired errors' mean over it
    error_source, error_production = (y - source) ** 2 / spread, (y - production) ** 2 / spread
    difference = error_source - error_production
    return 1 - error_source.mean(), 1 - error_production.mean(), difference.mean(), _standard_error(difference)


def _paired_auc(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    """AUC of scores ``a`` and ``b`` and DeLong's standard error of their difference (b - a) on the same rows:
    each positive's share of negatives ranked below it, and each negative's of positives ranked above it."""
    from scipy.stats import rankdata

    positive = y == 1
    m, n = int(positive.sum()), int((~positive).sum())
    placements = []
    for score in (a, b):
        rank_all = rankdata(score)
        of_positives = (rank_all[positive] - rankdata(score[positive])) / n
        of_negatives = 1 - (rank_all[~positive] - rankdata(score[~positive])) / m
        placements.append((of_positives, of_negatives))
    (a_pos, a_neg), (b_pos, b_neg) = placements
    variance = np.var(b_pos - a_pos, ddof=1) / m + np.var(b_neg - a_neg, ddof=1) / n
    auc_a, auc_b = a_pos.mean(), b_pos.mean()
    return float(auc_a), float(auc_b), float(auc_b - auc_a), math.sqrt(max(variance, 0.0))


def _standard_error(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1) / math.sqrt(len(values)))
