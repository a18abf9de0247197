"""The Dagster instance settings the loop relies on, written once for every place an instance is configured.

The sensors never request a second automatic retraining of a pipeline while one is queued or running; the run
queue holds the same line for whatever else launches runs (a person in the UI, a retried run, a second daemon):
it admits one run per value of ``RETRAINING_OF_TAG``, that is one retraining per pipeline, and keeps the others
queued. ``mlops-assets instance`` writes these settings into ``$DAGSTER_HOME/dagster.yaml`` (the Makefile does
so for the embedded default); deploy/dagster/dagster.yaml and the Helm values carry the same limit, and a test
holds them to ``RUN_QUEUE``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mlops_assets.naming import RETRAINING_OF_TAG

RETRAINING_LIMIT = {"key": RETRAINING_OF_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
RUN_QUEUE: dict[str, Any] = {"tag_concurrency_limits": [RETRAINING_LIMIT]}
TELEMETRY = {"enabled": False}


def with_loop_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` (a dagster.yaml's contents) with the run queue's retraining limit and telemetry off; every
    other setting, and any other tag limit, is kept."""
    queue = dict(settings.get("run_queue") or {})
    limits = [limit for limit in queue.get("tag_concurrency_limits") or [] if limit.get("key") != RETRAINING_OF_TAG]
    queue["tag_concurrency_limits"] = [*limits, RETRAINING_LIMIT]
    return {**settings, "telemetry": settings.get("telemetry", TELEMETRY), "run_queue": queue}


def write_instance_settings(home: Path) -> Path:
    """Add the loop's settings to ``home``/dagster.yaml (created when missing); return its path."""
    path = Path(home) / "dagster.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    current = yaml.safe_load(path.read_text()) if path.exists() else None
    path.write_text(yaml.safe_dump(with_loop_settings(current or {}), sort_keys=False))
    return path
