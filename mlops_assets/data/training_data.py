"""``validated_features``' reads and writes: the training set of one run, stored under its content hash.

The assembly itself is pure (``training_set``); this module validates both origins, applies the
adaptation a run was asked for, and writes the parts a version is trained and judged on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd
import pyarrow as pa

from mlops_assets.contracts import ArtifactStore
from mlops_assets.data.snapshot import content_hash
from mlops_assets.data.training_set import LOGGED_AT, TrainingSet, adapt, assemble
from mlops_assets.data.validation import validate
from mlops_assets.naming import StorePrefix, store_key
from mlops_assets.records import FeatureSet, FeedbackSet, RawSnapshot

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec


@dataclass(frozen=True)
class WrittenTrainingSet:
    features: FeatureSet
    rows_in: int
    rows_kept: int
    rows_quarantined: int
    quarantine_key: str | None
    metadata: dict[str, Any]


def adaptation_note_key(window_key: str) -> str:
    """Beside a drifted window's inputs: the drift they stand for (report, features, window)."""
    return window_key.removesuffix(".parquet") + ".json"


class ExampleJoin(Protocol):
    """Adds columns to the source rows before they are validated: the feature views' as-of join
    (``feature_views.training.ViewJoin``), passed in because the views sit above this layer."""

    @property
    def hashes(self) -> dict[str, str]: ...

    def __call__(self, examples: pd.DataFrame) -> pd.DataFrame: ...


def write_training_set(
    spec: PipelineSpec,
    store: ArtifactStore,
    raw: RawSnapshot,
    feedback: FeedbackSet | None,
    adapt_to: str | None,
    join: ExampleJoin | None = None,
) -> WrittenTrainingSet:
    """The run's training set, written under its version. With ``join``, the source rows gain the views' features
    first and are validated with them: the spec's schema declares them as the columns the model sees."""
    examples = store.read_table(raw.key).to_pandas()
    source = validate(spec, join(examples) if join else examples)
    production = _empty_production(spec)
    production_quarantined = production.iloc[:0]
    rows_in = raw.rows
    if feedback is not None and feedback.rows:
        rows = store.read_table(feedback.key).to_pandas()
        checked = validate(spec, rows, carry=(LOGGED_AT,))
        production, production_quarantined = checked.kept, checked.quarantined
        rows_in += len(rows)
    training = assemble(spec, source.kept, production)
    if adapt_to:
        training = adapt(spec, training, store.read_table(adapt_to).to_pandas(), _drift_note(store, adapt_to))
    version = _version(spec, training.train, training.holdout, training.recent)
    prefix = store_key(spec.name, StorePrefix.features, version)
    keys = {"train": f"{prefix}/train.parquet", "holdout": f"{prefix}/holdout.parquet"}
    parts = {"train": training.train, "holdout": training.holdout}
    if len(training.recent):
        keys["recent"], parts["recent"] = f"{prefix}/recent_holdout.parquet", training.recent
    if training.reference is not None:
        keys["reference"], parts["reference"] = f"{prefix}/reference.parquet", training.reference
    for name, frame in parts.items():
        store.write_table(keys[name], pa.Table.from_pandas(frame, preserve_index=False))
    quarantined = pd.concat([source.quarantined, production_quarantined], ignore_index=True)
    quarantine_key = None
    if len(quarantined):
        quarantine_key = f"{prefix}/quarantine.parquet"
        store.write_table(quarantine_key, pa.Table.from_pandas(quarantined.astype(str), preserve_index=False))
    features = FeatureSet(
        version,
        keys["train"],
        keys["holdout"],
        quarantine_key,
        raw.content_hash,
        keys.get("recent"),
        keys.get("reference", keys["train"]),
        feedback.content_hash if feedback else None,
        training.adaptation,
        training.origins(),
        _version(spec, training.train),
        training.concept_change,
        join.hashes if join else {},
    )
    rows_kept = len(source.kept) + len(production)
    return WrittenTrainingSet(
        features, rows_in, rows_kept, len(quarantined), quarantine_key, _metadata(training, features, source)
    )


def _empty_production(spec: PipelineSpec) -> pd.DataFrame:
    return pd.DataFrame(columns=[*spec.schema_.columns, LOGGED_AT])


def _drift_note(store: ArtifactStore, window_key: str) -> dict[str, Any]:
    return {"window": window_key, **json.loads(store.read_bytes(adaptation_note_key(window_key)))}


def _version(spec: PipelineSpec, *frames: pd.DataFrame) -> str:
    """A hash of the spec and ``frames``: of the training rows (and weights) alone, equal hashes would
    train the same model; with the holdouts, it names everything a version learnt from and was judged on."""
    digest = hashlib.sha256(spec.spec_hash.encode())
    for frame in frames:
        digest.update(content_hash(frame).encode())
    return digest.hexdigest()[:16]


def _metadata(training: TrainingSet, features: FeatureSet, source) -> dict[str, Any]:
    import dagster as dg

    from mlops_assets.data.training_set import WEIGHT

    weights = training.train[WEIGHT]
    return {
        "train_rows": len(training.train),
        "training_rows_by_origin": dg.MetadataValue.json(training.origins()),
        "weights": dg.MetadataValue.json(
            {"min": float(weights.min()), "max": float(weights.max()), "sum": float(weights.sum())}
        ),
        "holdout_rows": len(training.holdout),
        "recent_holdout_rows": len(training.recent),
        "failures_by_check": dg.MetadataValue.json(source.failures_by_check),
        "dataset_hash": features.dataset_hash,
        "feedback_hash": features.feedback_hash or "none",
        "features_version": features.version,
        "drift_reference": features.reference_key,
        **({"feature_views": dg.MetadataValue.json(features.views)} if features.views else {}),
        **({"adaptation": dg.MetadataValue.json(training.adaptation)} if training.adaptation else {}),
        **({"concept_change": dg.MetadataValue.json(training.concept_change)} if training.concept_change else {}),
        **({"notes": dg.MetadataValue.md("\n".join(f"- {note}" for note in training.notes))} if training.notes else {}),
    }
