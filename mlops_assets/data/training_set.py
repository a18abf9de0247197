"""What a model version learns from and is judged on, as one pure assembly.

The declared source's validated rows are split by id into training and the fixed holdout. Labelled
production rows (the feedback set) are split by the same rule: the holdout side's newest rows form the
recent holdout, and no holdout id ever trains; the training side joins the source under the spec's
training window. When the labelled production rows show that the concept changed (``concept``: a model
fit on them beats one fit on the source, which label noise alone cannot make happen), the source rows are
weighed down to ``CHANGED_SOURCE_SHARE`` of the production rows' weight, unless the spec sets
``training.window.source_weight`` itself. A drift answered without labels adds importance weights, for the
training rows and for the fixed holdout, so the gate can also judge both models on the drifted distribution.

Every choice here is a function of the data (ages count from the newest production row, splits hash the
id), so the same inputs always give the same training set and any version's set can be rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlops_assets.data.concept import MAX_ROWS, concept_test, spec_inputs
from mlops_assets.data.training_window import (
    LOGGED_AT,
    ORIGIN,
    WEIGHT,
    WindowPolicy,
    holdout_mask,
    newest_rows,
    select_training_rows,
)
from mlops_assets.data.validation import split_holdout
from mlops_assets.errors import DataError

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec

IMPORTANCE = "_importance"  # fixed holdout rows: importance weight under the drifted distribution
# After a concept change the source rows together weigh this share of the production rows: they can no longer
# outvote production where both have rows (the model follows the side ten times heavier), yet still teach the
# inputs production has not reached, where the source is all the model has.
CHANGED_SOURCE_SHARE = 0.1


@dataclass(frozen=True)
class TrainingSet:
    train: pd.DataFrame
    holdout: pd.DataFrame
    recent: pd.DataFrame  # labelled production rows kept out of training: judged on today's data
    reference: pd.DataFrame | None  # inputs the version is fitted for, when not its training rows
    adaptation: dict[str, Any] | None = None  # how the weights answer a drift: window, features, sample size
    notes: list[str] = field(default_factory=list)
    concept_change: dict[str, Any] | None = None  # ``concept.ConceptTest.as_json``, with production rows to test

    def origins(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.train[ORIGIN].value_counts().sort_index().items()}


def split_rows(spec: PipelineSpec, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training and holdout rows. With an id column the split hashes the id, so a case stays on its side
    whatever rows come with it: a production row of a holdout id is never trained on."""
    if spec.id_column is None:
        return split_holdout(frame, spec.split.holdout, spec.split.seed)
    holdout = holdout_mask(frame[spec.id_column].astype(str), spec.split.holdout, spec.split.seed)
    return frame[~holdout].reset_index(drop=True), frame[holdout].reset_index(drop=True)


def window_policy(spec: PipelineSpec) -> WindowPolicy:
    window = spec.training.window
    return WindowPolicy(window.policy, window.rows, window.days, window.half_life_days, window.source_weight)


def assemble(spec: PipelineSpec, source: pd.DataFrame, production: pd.DataFrame) -> TrainingSet:
    """Source and labelled production rows (both validated) as training rows, fixed and recent holdouts."""
    source_train, holdout = split_rows(spec, source)
    production_train, production_holdout = split_rows(spec, production) if len(production) else (production,) * 2
    # a holdout id never trains, however old its row: it may be a case of the fixed holdout served again, or
    # come back into the recent holdout when it is served again
    recent = newest_rows(production_holdout, spec.training.recent_holdout.rows).reset_index(drop=True)
    now_ms = int(production_train[LOGGED_AT].max()) if len(production_train) else 0
    train = select_training_rows(source_train, production_train, window_policy(spec), now_ms)
    if train.empty:
        raise DataError(
            f"{spec.name}: nothing to train on: {len(source)} validated source rows and {len(production)} labelled "
            "production rows, none inside training.window (a spec with a labels source trains on rows whose label "
            "has arrived: add a label batch, or give the source its target column)"
        )
    train, concept, notes = _answer_concept_change(spec, source_train, train)
    reference = _production_reference(spec, train)
    return TrainingSet(train, holdout, recent, reference, notes=notes, concept_change=concept)


def _answer_concept_change(
    spec: PipelineSpec, source: pd.DataFrame, train: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, Any] | None, list[str]]:
    """The training rows, the concept test of their newest production rows against the source's training
    rows, and what was done about it: after a change the source rows are weighed down to
    ``CHANGED_SOURCE_SHARE`` of the production rows' weight (never up), unless the spec sets
    ``training.window.source_weight``, the operator's own answer."""
    production = train[train[ORIGIN] == "production"]
    if production.empty:
        return train, None, []
    confidence, seed = spec.training.recent_holdout.confidence, spec.split.seed
    test = concept_test(
        source, newest_rows(production, MAX_ROWS), spec_inputs(spec), spec.target, spec.task, confidence, seed
    )
    if not test.changed:
        return train, test.as_json(), []
    if "source_weight" in spec.training.window.model_fields_set:
        kept = spec.training.window.source_weight
        return train, test.as_json(), [f"{test.reason}; training.window.source_weight {kept:g} is the spec's: kept"]
    is_source = (train[ORIGIN] == "source").to_numpy()
    weights = train[WEIGHT].to_numpy()
    source_total, production_total = weights[is_source].sum(), weights[~is_source].sum()
    scale = min(1.0, CHANGED_SOURCE_SHARE * production_total / source_total) if source_total > 0 else 1.0
    train = train.assign(**{WEIGHT: np.where(is_source, weights * scale, weights)})
    note = (
        f"{test.reason}; the source rows weigh at most {CHANGED_SOURCE_SHARE:.0%} of the production rows' weight "
        f"(each x{scale:.4f}; set training.window.source_weight to choose otherwise)"
    )
    return train, test.as_json(), [note]


def _production_reference(spec: PipelineSpec, train: pd.DataFrame) -> pd.DataFrame | None:
    """The newest production rows a version trains on, when there are enough for a drift verdict: the
    distribution it was fitted for, so a drift it learnt from is not reported again."""
    production = train[train[ORIGIN] == "production"]
    if len(production) < spec.monitoring.min_rows:
        return None
    return newest_rows(production, spec.monitoring.window)[spec.input_columns].reset_index(drop=True)


def adapt(spec: PipelineSpec, training: TrainingSet, window: pd.DataFrame, drift: dict[str, Any]) -> TrainingSet:
    """Importance weights toward the drifted ``window`` for the training rows and the fixed holdout.

    Raises ``DataError`` naming the reason where weighting cannot answer the drift (the drift report says
    so first, and the sensors do not ask for such a retraining)."""
    from mlops_assets.data.adaptation import adaptation_plan

    settings = spec.training.adaptation
    dtypes = {c: spec.schema_.columns[c].dtype for c in spec.input_columns}
    reference = {c: training.train[c].to_numpy() for c in spec.input_columns}
    target = {c: window[c].to_numpy() for c in spec.input_columns if c in window.columns}
    plan = adaptation_plan(reference, target, dtypes, settings.min_effective_share, settings.max_weight)
    if not plan.feasible:
        raise DataError(f"{spec.name}: importance weights cannot answer this drift: {'; '.join(plan.reasons)}")
    importance = plan.density_ratio.weights(reference)
    weights = training.train[WEIGHT].to_numpy() * importance
    train = training.train.assign(**{WEIGHT: weights * len(weights) / weights.sum()})
    holdout = training.holdout.assign(
        **{IMPORTANCE: plan.density_ratio.weights({c: training.holdout[c].to_numpy() for c in spec.input_columns})}
    )
    adaptation = {
        **drift,
        "effective_sample_size": round(float(plan.effective_sample_size), 1),
        "effective_share": round(float(plan.effective_share), 4),
        "largest_weight": round(float(np.max(importance)), 3),
    }
    return replace(training, train=train, holdout=holdout, reference=window[spec.input_columns], adaptation=adaptation)
