"""The drift report of a served model: its newest logged traffic against its training data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from mlops_assets.contracts import ArtifactStore
from mlops_assets.drift import DriftConfig, compute_drift
from mlops_assets.records import EndpointState


@dataclass(frozen=True)
class DriftOutcome:
    status: str  # "drifted", "no drift" or "not enough traffic"
    window_rows: int
    markdown: str
    as_json: dict[str, Any]
    drifted_features: list[str] = field(default_factory=list)


def newest_window(store: ArtifactStore, prefix: str, rows: int) -> pa.Table:
    """The last ``rows`` logged rows: files are read newest first until the window is full."""
    tables, total = [], 0
    for key in reversed([k for k in store.list(prefix) if k.endswith(".parquet")]):
        table = store.read_table(key)
        tables.append(table)
        total += table.num_rows
        if total >= rows:
            break
    if not tables:
        return pa.table({})
    window = pa.concat_tables(reversed(tables), promote_options="permissive")
    return window.slice(max(0, window.num_rows - rows))


def drift_config(monitoring) -> DriftConfig:
    """The spec's ``monitoring`` section as the drift statistics' configuration."""
    return DriftConfig(
        bins=monitoring.bins,
        psi_threshold=monitoring.psi_threshold,
        wasserstein_threshold=monitoring.wasserstein_threshold,
        js_threshold=monitoring.js_threshold,
        alpha=monitoring.alpha,
        correction=monitoring.correction,
        overrides={name: t.model_dump(exclude_none=True) for name, t in monitoring.features.items()},
    )


def build_drift_report(spec, store: ArtifactStore, endpoint: EndpointState) -> DriftOutcome:
    monitoring = spec.monitoring
    window = newest_window(store, endpoint.log_key, monitoring.window)
    base = {
        "model_version": endpoint.model_version,
        "reference": endpoint.reference_key,
        "window_rows": window.num_rows,
        "window_size": monitoring.window,
    }
    if window.num_rows < monitoring.min_rows:
        message = (
            f"Not enough traffic yet: {window.num_rows} logged rows, a verdict needs "
            f"{monitoring.min_rows} (monitoring.min_rows)."
        )
        return DriftOutcome("not enough traffic", window.num_rows, message, {**base, "status": "not enough traffic"})
    reference = store.read_table(endpoint.reference_key)
    dtypes = {c: spec.schema_.columns[c].dtype for c in spec.input_columns}
    current = {c: window.column(c).to_numpy(zero_copy_only=False) for c in window.column_names if c in dtypes}
    report = compute_drift(
        {c: reference.column(c).to_numpy(zero_copy_only=False) for c in dtypes},
        current,
        dtypes,
        drift_config(monitoring),
    )
    status = "drifted" if report.drifted else "no drift"
    return DriftOutcome(
        status,
        window.num_rows,
        report.to_markdown(),
        {**base, "status": status, **report.to_dict()},
        report.drifted_features,
    )
