"""The audit log: one immutable record per deployment decision, in the artifact store.

Each decision (a replace, a canary's verdict, a shadow or A/B start, a rollback, a restart by the endpoint
supervisor) is written as its own JSON object under ``<pipeline>/audit/``, named by time, so the log works on
an object store (nothing is appended to) and survives the Dagster instance and the MLflow registry it also
describes.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from mlops_assets.contracts import ArtifactStore
from mlops_assets.naming import StorePrefix, store_key


def audit_prefix(pipeline: str) -> str:
    return store_key(pipeline, StorePrefix.audit)


def write_record(store: ArtifactStore, prefix: str, pipeline: str, record: dict[str, Any]) -> str:
    """Write one record under ``prefix`` with the time it was made, named by that time; return its key."""
    now = dt.datetime.now(dt.UTC)
    event = {"time": now.isoformat(timespec="milliseconds"), "pipeline": pipeline, **record}
    key = f"{prefix}/{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}.json"
    store.write_bytes(key, json.dumps(event, default=str, sort_keys=True).encode())
    return key


def read_records(store: ArtifactStore, prefix: str) -> list[dict[str, Any]]:
    """Every record under ``prefix``, oldest first."""
    return [json.loads(store.read_bytes(key)) for key in store.list(prefix) if key.endswith(".json")]


def record_decision(store: ArtifactStore, pipeline: str, decision: dict[str, Any]) -> str:
    """Write one decision with the time it was taken; return its key."""
    return write_record(store, audit_prefix(pipeline), pipeline, decision)


def read_decisions(store: ArtifactStore, pipeline: str) -> list[dict[str, Any]]:
    """Every recorded decision of the pipeline, oldest first."""
    return read_records(store, audit_prefix(pipeline))


def describe_decision(event: dict[str, Any]) -> str:
    """One line per decision, for the terminal."""
    previous = event.get("previous_version")
    line = (
        f"{event['time']}  {event['action']}: v{event['model_version']}"
        + (f" (was v{previous})" if previous else "")
        + f" by {event.get('approved_by', '?')}"
    )
    if event.get("reasons"):
        line += " - " + "; ".join(event["reasons"])
    return line
