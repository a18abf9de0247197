"""Training/serving skew: the features and prediction the endpoint computed for a sample of served rows, against
the same rows featurised again offline, as the training reads data, by the version that served them.

The endpoint keeps the feature vectors of one scoring request in ``monitoring.skew.sample_every`` (the log's
``features`` column). Their logged inputs go through the spec's schema as training data does (``validate``: its
coercion and rules), then through the version's transformer and model. A feature, prediction or score that
differs beyond the tolerance is named, with the rows that show it and the largest difference; so is an input the
training would refuse. Two ways of computing one feature drift apart silently (a fast path, a coercion, a
library upgraded in one image only): this is where that shows.

Pure: the caller reads the log and loads the models; nothing here touches a store or a registry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlops_assets.model.pipeline_model import PipelineModel
from mlops_assets.serving.inference_log import FEATURES, INVALID

if TYPE_CHECKING:
    from mlops_assets.feature_views.training import JoinedView
    from mlops_assets.spec import PipelineSpec

PREDICTION, SCORE = "prediction", "score"
_ROW = "__row"  # carried through validation: where a kept row sits in the sample


@dataclass(frozen=True)
class Mismatch:
    """One quantity of one version whose served and offline values differ on some sampled rows."""

    version: str
    name: str  # an output feature, "prediction", "score", or an input column the training's schema refuses
    rows: int
    largest: float | None  # largest difference; None where values do not subtract (labels, refused inputs)
    example: str  # one such row: what the endpoint had, and what the offline path makes of it

    def __str__(self) -> str:
        largest = "" if self.largest is None else f", largest difference {self.largest:.3g}"
        return f"v{self.version} {self.name}: {self.rows} row(s) differ{largest} ({self.example})"


@dataclass(frozen=True)
class SkewVerdict:
    rows: int  # sampled rows compared
    by_version: dict[str, int]  # sampled rows compared, per version that served them
    largest: float  # largest difference of any compared number (0.0 with nothing compared)
    tolerance: float
    mismatches: list[Mismatch]
    left_out: int = 0  # sampled rows the endpoint flagged invalid (on_invalid: flag): training never sees those

    @property
    def passed(self) -> bool:
        return not self.mismatches

    @property
    def message(self) -> str:
        if self.rows == 0:
            return "nothing to compare yet: no sampled row in the inference log"
        versions = ", ".join(f"v{v}: {n}" for v, n in self.by_version.items())
        if self.passed:
            return (
                f"{self.rows} sampled row(s) ({versions}): features, predictions and scores the same offline, "
                f"largest difference {self.largest:.3g} (tolerance {self.tolerance:g})"
            )
        names = ", ".join(sorted({m.name for m in self.mismatches}))
        return f"training/serving skew in {names} on {self.rows} sampled row(s) ({versions})"


def newest_sampled(table: pa.Table, rows: int) -> pa.Table:
    """The newest ``rows`` rows of a log window (oldest first) that carry the features the endpoint computed."""
    if FEATURES not in table.column_names:
        return table.slice(0, 0)
    sampled = table.filter(pc.is_valid(table.column(FEATURES)))
    return sampled.slice(max(sampled.num_rows - rows, 0))


def beyond(served: np.ndarray, offline: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Where two float arrays differ beyond ``tolerance`` (absolute, or relative to the larger value's size),
    and the differences: NaN against NaN, or an infinity against the same one, is no difference; NaN against a
    number is an infinite one."""
    with np.errstate(invalid="ignore"):
        same = (served == offline) | (np.isnan(served) & np.isnan(offline))
        difference = np.where(same, 0.0, np.abs(served - offline))
    difference = np.where(np.isnan(difference), np.inf, difference)
    size = np.maximum(1.0, np.maximum(np.abs(np.nan_to_num(served)), np.abs(np.nan_to_num(offline))))
    return difference > tolerance * size, difference


def judge_skew(
    spec: PipelineSpec,
    sample: pa.Table,
    models: Mapping[str, PipelineModel],
    tolerance: float,
    views: Sequence[JoinedView] = (),
) -> SkewVerdict:
    """``sample`` (``newest_sampled``) against each serving version in ``models`` featurised offline, and the
    features the endpoint looked up in the online tables of ``views`` against the offline snapshots as of each
    row's logged time (``compare_views``)."""
    left_out = 0
    if INVALID in sample.column_names:
        flagged = pc.is_valid(sample.column(INVALID))
        left_out = pc.sum(flagged).as_py() or 0
        sample = sample.filter(pc.invert(flagged))
    if sample.num_rows == 0:
        return SkewVerdict(0, {}, 0.0, tolerance, [], left_out)
    mismatches, largest, by_version = [], 0.0, {}
    versions = sample.column("model_version").to_pylist()
    for version in sorted(set(versions), key=str):
        rows = sample.filter(pc.equal(sample.column("model_version"), version))
        found, seen = compare_version(spec, models[version], version, rows, tolerance)
        looked_up, seen_in_views = compare_views(version, rows, views, tolerance)
        mismatches += found + looked_up
        largest = max(largest, seen, seen_in_views)
        by_version[version] = rows.num_rows
    return SkewVerdict(sample.num_rows, by_version, largest, tolerance, mismatches, left_out)


def compare_version(
    spec: PipelineSpec, model: PipelineModel, version: str, rows: pa.Table, tolerance: float
) -> tuple[list[Mismatch], float]:
    """The mismatches of one version's sampled rows, and the largest difference of any compared number."""
    from mlops_assets.data.validation import validate
    from mlops_assets.serving.app import kept_score

    ids = rows.column("request_id").to_pylist() if "request_id" in rows.column_names else list(range(rows.num_rows))
    frame = rows.select(spec.input_columns).to_pandas()
    frame[_ROW] = np.arange(len(frame))
    checked = validate(spec, frame, carry=[_ROW])
    mismatches = refused_inputs(version, checked.quarantined)
    kept = checked.kept
    if kept.empty:
        return mismatches, 0.0
    at = kept.pop(_ROW).to_numpy()
    names = model.transformer.output_names
    widths = set(pc.list_value_length(rows.column(FEATURES)).to_pylist())
    if widths != {len(names)}:
        example = f"the endpoint logged {sorted(widths)} values a row, the transformer makes {len(names)}"
        return [*mismatches, Mismatch(version, FEATURES, rows.num_rows, None, example)], 0.0
    served = served_features(rows, len(names))[at]
    offline = model.transformer.transform(kept)
    prediction = model.predict(kept)
    quantities = [(name, served[:, i], offline[:, i]) for i, name in enumerate(names)]
    quantities.append((SCORE, column_floats(rows, SCORE)[at], np.asarray(kept_score(prediction), dtype=float)))
    logged = rows.column(PREDICTION).take(pa.array(at))
    if model.classes is None:
        quantities.append((PREDICTION, logged.to_numpy(zero_copy_only=False).astype(float), prediction.labels))
    else:  # labels as the log keeps them: Arrow's cast to text (``1`` as "1", ``True`` as "true")
        offline_labels = pa.array(prediction.labels.tolist()).cast(pa.string()).to_pylist()
        differs = np.array([a != b for a, b in zip(logged.to_pylist(), offline_labels, strict=True)])
        if differs.any():
            first = int(np.argmax(differs))
            example = f"request {ids[at[first]]}: served {logged[first].as_py()!r}, offline {offline_labels[first]!r}"
            mismatches.append(Mismatch(version, PREDICTION, int(differs.sum()), None, example))
    largest, features = 0.0, len(names)
    for i, (name, served_values, offline_values) in enumerate(quantities):
        within = tolerance if i < features else output_tolerance(model, tolerance)
        differs, difference = beyond(served_values, np.asarray(offline_values, dtype=float), within)
        largest = max(largest, float(difference.max(initial=0.0)))
        if differs.any():
            worst = int(np.argmax(np.where(differs, difference, -1.0)))
            example = (
                f"request {ids[at[worst]]}: served {float(served_values[worst])!r}, "
                f"offline {float(offline_values[worst])!r}"
            )
            mismatches.append(Mismatch(version, name, int(differs.sum()), float(difference[worst]), example))
    return mismatches, largest


def compare_views(
    version: str, rows: pa.Table, views: Sequence[JoinedView], tolerance: float
) -> tuple[list[Mismatch], float]:
    """Each view feature the endpoint looked up and logged for ``rows``, against the as-of join of the view's
    offline snapshot at the row's logged time (what the training would have joined for that entity then): one
    mismatch per feature, named ``<view>.<feature>``, with the rows that differ beyond ``tolerance`` (a missing
    value against a present one included), and the largest difference."""
    from mlops_assets.spec.feature_view import entity_column, referenced_features

    mismatches, largest = [], 0.0
    ids = rows.column("request_id").to_pylist() if "request_id" in rows.column_names else list(range(rows.num_rows))
    for joined in views:
        view, key = joined.view, entity_column(joined.reference, joined.view)
        features = [f for f in referenced_features(joined.reference, view) if f in rows.column_names]
        if key not in rows.column_names or not features:
            continue
        examples = rows.select([key, "timestamp"]).to_pandas()
        offline = joined.as_of(examples, features, key, "timestamp")
        for feature in features:
            served = column_floats(rows, feature)
            expected = pd.to_numeric(pd.Series(offline[feature]), errors="coerce").to_numpy(float)
            differs, difference = beyond(served, expected, tolerance)
            both = ~(np.isnan(served) | np.isnan(expected))
            largest = max(largest, float(difference[both].max(initial=0.0)))
            if differs.any():
                worst = int(np.argmax(differs))
                example = (
                    f"request {ids[worst]}: looked up {float(served[worst])!r}, offline view as of "
                    f"{examples['timestamp'].iloc[worst]} {float(expected[worst])!r}"
                )
                mismatches.append(Mismatch(version, f"{view.name}.{feature}", int(differs.sum()), None, example))
    return mismatches, largest


def output_tolerance(model: PipelineModel, tolerance: float) -> float:
    """What counts as rounding in ``model``'s score and numeric prediction: ``tolerance``, or the estimator's own
    ``output_tolerance`` where it computes in lower precision (``TorchMLP``: float32), whichever is larger. The
    features are the transformer's float64 arithmetic whatever the estimator: they keep ``tolerance``."""
    return max(tolerance, getattr(model.estimator, "output_tolerance", 0.0))


def refused_inputs(version: str, quarantined) -> list[Mismatch]:
    """Sampled rows whose logged inputs the training's schema refuses, one mismatch per column named: the
    endpoint coerced or accepted a value the training would not have."""
    by_column: dict[str, list[str]] = {}
    for failures in quarantined.get("_failures", []):
        for failure in str(failures).split("; "):
            by_column.setdefault(failure.split(":", 1)[0], []).append(failure)
    return [
        Mismatch(version, column, len(cases), None, f"the training's schema refuses it: {cases[0]}")
        for column, cases in by_column.items()
    ]


def served_features(rows: pa.Table, width: int) -> np.ndarray:
    """The logged feature vectors (``width`` values each) as a matrix, one row per sampled row."""
    flat = pc.list_flatten(rows.column(FEATURES).combine_chunks())
    return flat.to_numpy(zero_copy_only=False).reshape(rows.num_rows, width)


def column_floats(rows: pa.Table, name: str) -> np.ndarray:
    return rows.column(name).to_numpy(zero_copy_only=False).astype(float)
