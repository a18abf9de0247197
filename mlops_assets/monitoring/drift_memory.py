"""What the loop remembers about a drift between reports: the window a retraining may adapt to, and the
drifts a retraining could not fix (acknowledged, so they start no second retraining).

Both are small immutable objects in the artifact store, keyed so that a new champion starts afresh: an
acknowledgement belongs to the champion it was made for.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from mlops_assets.contracts import ArtifactStore
from mlops_assets.naming import StorePrefix, store_key

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec


def _acknowledgement_key(pipeline: str, champion_version: str) -> str:
    return store_key(pipeline, StorePrefix.acknowledged_drifts, f"v{champion_version}.json")


def acknowledge(
    store: ArtifactStore, pipeline: str, champion_version: str, challenger_version: str, adaptation: dict[str, Any]
) -> str:
    """Record that weighting toward ``adaptation``'s window did not beat the champion: that drift is known."""
    previous = acknowledged(store, pipeline, champion_version) or {"features": []}
    record = {
        "champion_version": champion_version,
        "challenger_version": challenger_version,
        "features": sorted(set(previous["features"]) | set(adaptation.get("features", []))),
        "window": adaptation.get("window"),
        "drift_report": adaptation.get("drift_report"),
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    key = _acknowledgement_key(pipeline, champion_version)
    store.write_bytes(key, json.dumps(record, indent=2).encode())
    return key


def acknowledged(store: ArtifactStore, pipeline: str, champion_version: str) -> dict[str, Any] | None:
    key = _acknowledgement_key(pipeline, champion_version)
    return json.loads(store.read_bytes(key)) if store.exists(key) else None


def plan_adaptation(
    spec: PipelineSpec,
    store: ArtifactStore,
    reference: pd.DataFrame,
    window: pd.DataFrame,
    features: list[str],
    report_id: str,
) -> tuple[str | None, list[str], dict[str, Any]]:
    """(key of the window to adapt to, reasons it cannot be, figures) for a drifted window.

    Where importance weights can answer the drift, the window's inputs are stored for the retraining
    (named by content) with a note of the drift they stand for; otherwise the reasons say why not.
    """
    from mlops_assets.data.adaptation import adaptation_plan
    from mlops_assets.data.snapshot import content_hash
    from mlops_assets.data.training_data import adaptation_note_key

    settings = spec.training.adaptation
    if not settings.enabled:
        return None, ["training.adaptation.enabled is false"], {}
    dtypes = {c: spec.schema_.columns[c].dtype for c in spec.input_columns}
    plan = adaptation_plan(
        {c: reference[c].to_numpy() for c in spec.input_columns},
        {c: window[c].to_numpy() for c in spec.input_columns if c in window.columns},
        dtypes,
        settings.min_effective_share,
        settings.max_weight,
    )
    figures = {"effective_share": plan.effective_share, "effective_sample_size": plan.effective_sample_size}
    if not plan.feasible:
        return None, plan.reasons, figures
    inputs = window[[c for c in spec.input_columns if c in window.columns]].reset_index(drop=True)
    key = store_key(spec.name, StorePrefix.adaptation, f"{content_hash(inputs)}.parquet")
    store.write_table(key, pa.Table.from_pandas(inputs, preserve_index=False))
    note = {"features": features, "drift_report": report_id}
    store.write_bytes(adaptation_note_key(key), json.dumps(note).encode())
    return key, [], figures
