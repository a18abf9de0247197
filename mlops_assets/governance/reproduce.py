"""Reproduce a registered version from what it recorded, not from what is on disk now.

The stored raw snapshot, training set and holdout are read back and checked against the hashes the version
recorded (a version trained on feature views has its training set rebuilt by the as-of join of the recorded
snapshots); the spec is the one the training read (its MLflow artifact); the estimator is fitted in this
process by the training's own code (``make_estimator``, ``fit_pipeline_model``) and scored as the gate
scored it. Nothing is registered and no alias moves.

How close is close enough: a scikit-learn estimator refitted on the same rows with the same parameters gives
the same model, so its metrics must be equal exactly. The torch trainer is seeded, but floating-point
reductions may be ordered differently between runs and devices: its metrics must agree within
``TORCH_TOLERANCE`` on the CPU, ``TORCH_CUDA_TOLERANCE`` where either fit ran on a CUDA device.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

from mlops_assets.contracts import ArtifactStore
from mlops_assets.data.snapshot import content_hash
from mlops_assets.errors import MlopsError
from mlops_assets.model.provenance import HOLDOUT, freeze_differences, pip_freeze, stored_parts
from mlops_assets.model.registry import MlflowRegistryClient
from mlops_assets.naming import (
    COMPONENT_TYPE,
    FEATURE_VIEW_TAG,
    FEATURE_VIEWS,
    PROVENANCE_ARTIFACT,
    PROVENANCE_FOLDER,
    REQUIREMENTS_ARTIFACT,
    SPEC_ARTIFACT,
    StorePrefix,
    store_key,
)
from mlops_assets.spec import PipelineSpec

TORCH_TOLERANCE = 1e-6
TORCH_CUDA_TOLERANCE = 1e-3


class ReproductionError(MlopsError):
    """A version cannot be reproduced: what it recorded is missing, or its stored data were altered."""


@dataclass(frozen=True)
class MetricComparison:
    name: str  # as the version's run logged it: train_<metric> or holdout_<metric>
    recorded: float
    reproduced: float

    @property
    def difference(self) -> float:
        return abs(self.reproduced - self.recorded)


@dataclass(frozen=True)
class Reproduction:
    name: str
    version: str
    metrics: list[MetricComparison]
    tolerance: float
    checked: list[str]  # what was read back and found as recorded
    environment_differences: list[str] = field(default_factory=list)
    seed: dict = field(default_factory=dict)

    @property
    def reproduced(self) -> bool:
        return bool(self.metrics) and all(m.difference <= self.tolerance for m in self.metrics)


def verified_table(store: ArtifactStore, key: str, expected: str, what: str, version: str) -> pd.DataFrame:
    """The stored table at ``key``, if its content hash is the one the version recorded."""
    if not store.exists(key):
        raise ReproductionError(f"v{version}'s {what} {store.uri(key)} is missing from the artifact store")
    frame = pd.read_parquet(store.uri(key))
    found = content_hash(frame)
    if found != expected:
        raise ReproductionError(
            f"v{version}'s {what} {store.uri(key)} was altered: its content hash is {found}, the version recorded "
            f"{expected}; nothing was retrained or registered"
        )
    return frame


def recorded_spec(client: MlflowRegistryClient, name: str, version: str, tags: dict[str, str]) -> PipelineSpec:
    """The spec the version was trained with, from its run's artifact (the file on disk may have changed)."""
    text = client.artifact(name, version, f"{PROVENANCE_FOLDER}/{SPEC_ARTIFACT}")
    if text is None:
        raise ReproductionError(
            f"{name} v{version} has no recorded spec ({PROVENANCE_FOLDER}/{SPEC_ARTIFACT} in its MLflow run): it was "
            "trained before versions recorded their spec, so it cannot be reproduced"
        )
    spec = spec_from_text(text, f"{name} v{version}'s {SPEC_ARTIFACT}")
    if spec.spec_hash != tags.get("spec_hash"):
        raise ReproductionError(
            f"{name} v{version}'s recorded spec hashes to {spec.spec_hash}, "
            f"the version recorded {tags.get('spec_hash')}"
        )
    return spec


def spec_from_text(text: bytes, where: str) -> PipelineSpec:
    """A spec from its YAML, without the file checks of ``load_spec``: the source files it names may have
    changed or gone since the version was trained, and reproducing reads the stored snapshot instead."""
    import yaml
    from pydantic import ValidationError

    raw = yaml.safe_load(text)
    if isinstance(raw, dict) and raw.get("type") == COMPONENT_TYPE:
        raw = raw.get("attributes")
    try:
        return PipelineSpec.model_validate(raw)
    except ValidationError as exc:
        raise ReproductionError(f"{where} no longer validates (this code reads specs differently): {exc}") from None


def rebuilt_view_join(spec: PipelineSpec, store: ArtifactStore, tags: dict[str, str], version: str) -> list[str]:
    """For a version trained on feature views: its training set rebuilt from the raw snapshot joined as of each row
    with the view snapshots it recorded (``feature_view.<view>`` tags), found equal to the stored one. The views'
    definitions (keys, TTL) are read from the ``feature_views`` folder beside the spec it was trained from. A
    version that also learnt from production rows or importance weights has its snapshots checked, not rebuilt."""
    from mlops_assets.data.training_set import LOGGED_AT, assemble
    from mlops_assets.data.validation import validate
    from mlops_assets.errors import DataError
    from mlops_assets.feature_views.training import read_view_join
    from mlops_assets.spec.feature_view import FeatureViewError, load_feature_views

    hashes = {k.removeprefix(FEATURE_VIEW_TAG): v for k, v in tags.items() if k.startswith(FEATURE_VIEW_TAG)}
    if not hashes:
        return []
    location = Path(tags.get("spec_location", "."))
    try:
        views = load_feature_views((location if location.is_dir() else location.parent) / FEATURE_VIEWS)
        join = read_view_join(store, spec.features.views, views, hashes)
    except (FeatureViewError, DataError, KeyError) as exc:
        raise ReproductionError(f"v{version}'s feature views cannot be read back: {exc}") from None
    for joined in join.views:
        if content_hash(joined.snapshot) != joined.content_hash:
            raise ReproductionError(f"v{version}'s snapshot of view {joined.view.name!r} was altered")
    read_back = [f"view {name} snapshot {digest}" for name, digest in hashes.items()]
    if tags.get("feedback_hash", "none") != "none" or tags.get("adaptation", "none") != "none":
        return [*read_back, "join not rebuilt: the version also learnt from production rows or importance weights"]
    raw = store.read_table(store_key(spec.name, StorePrefix.raw, f"{tags['dataset_hash']}.parquet")).to_pandas()
    source = validate(spec, join(raw)).kept
    train = assemble(spec, source, pd.DataFrame(columns=[*spec.schema_.columns, LOGGED_AT])).train
    found = content_hash(pa.Table.from_pandas(train, preserve_index=False).to_pandas())
    if found != tags["training_set_hash"]:
        raise ReproductionError(
            f"v{version}'s training set rebuilt from its raw snapshot and view snapshots hashes to {found}, the "
            f"version recorded {tags['training_set_hash']}: the join or the views' definitions changed"
        )
    return [*read_back, f"as-of join rebuilt: {len(train)} training rows equal to the stored set"]


def tolerance(spec: PipelineSpec, devices: tuple[str, ...]) -> float:
    """How far a reproduced metric may be from the recorded one (module docstring)."""
    if spec.model.torch is None:
        return 0.0
    return TORCH_CUDA_TOLERANCE if any(d.startswith("cuda") for d in devices) else TORCH_TOLERANCE


def reproduce(name: str, version: str, store: ArtifactStore, client: MlflowRegistryClient) -> Reproduction:
    """Refit ``name`` v``version`` on its recorded training set with its recorded spec and compare its
    training and fixed-holdout metrics with those it logged. Raises ``ReproductionError`` before fitting
    anything when a stored part is missing or altered."""
    from mlops_assets.evaluation.holdouts import score
    from mlops_assets.model.metrics import compute_metrics
    from mlops_assets.model.pipeline_model import fit_pipeline_model
    from mlops_assets.model.training import make_estimator, sample_weights

    tags = client.get(name, version).tags
    spec = recorded_spec(client, name, version, tags)
    record = json.loads(client.artifact(name, version, f"{PROVENANCE_FOLDER}/{PROVENANCE_ARTIFACT}") or b"{}")
    checked = [f"spec {spec.spec_hash} (the recorded file, {tags.get('spec_file_hash', '?')})"]
    snapshot = store_key(name, StorePrefix.raw, f"{tags['dataset_hash']}.parquet")
    verified_table(store, snapshot, tags["dataset_hash"], "raw snapshot", version)
    checked.append(f"raw snapshot {snapshot} ({tags['dataset_hash']})")
    train_key, expected = tags["training_set"], tags["training_set_hash"]  # recorded with the spec artifact
    train = verified_table(store, train_key, expected, "training set", version)
    checked.append(f"training set {train_key} ({expected}, {len(train)} rows)")
    checked += rebuilt_view_join(spec, store, tags, version)
    holdout_key = stored_parts(train_key)[HOLDOUT]
    holdout = verified_table(
        store, holdout_key, record.get("content_hashes", {}).get(HOLDOUT, "?"), "fixed holdout", version
    )
    checked.append(f"fixed holdout {holdout_key} ({len(holdout)} rows)")

    requirements = client.artifact(name, version, f"{PROVENANCE_FOLDER}/{REQUIREMENTS_ARTIFACT}")
    differences = freeze_differences(requirements.decode(), pip_freeze()) if requirements else ["not recorded"]

    estimator = make_estimator(spec, tags.get("spec_location", name))
    model = fit_pipeline_model(spec, train, estimator, sample_weights(train))
    scored = score(model, holdout, spec.target)
    reproduced = {f"train_{k}": v for k, v in model.evaluate(train, spec.target, spec.metrics).items()}
    holdout_metrics = compute_metrics(spec.metrics, scored.y_true, scored.y_pred, scored.y_score)
    reproduced.update({f"holdout_{k}": v for k, v in holdout_metrics.items()})
    logged = client.metrics(name, version)
    comparisons = [MetricComparison(k, logged[k], float(v)) for k, v in reproduced.items() if k in logged]
    devices = (tags.get("device", "cpu"), getattr(estimator, "device_used_", None) or "cpu")
    return Reproduction(
        name, version, comparisons, tolerance(spec, devices), checked, differences, record.get("seed", {})
    )


def metrics_table(reproduction: Reproduction) -> str:
    """The recorded and reproduced metrics side by side, with their difference and verdict."""
    lines = [f"{'metric':<22} {'recorded':>12} {'reproduced':>12} {'difference':>11}"]
    for m in reproduction.metrics:
        verdict = "ok" if m.difference <= reproduction.tolerance else "DIFFERS"
        lines.append(f"{m.name:<22} {m.recorded:>12.6f} {m.reproduced:>12.6f} {m.difference:>11.2e}  {verdict}")
    return "\n".join(lines)
