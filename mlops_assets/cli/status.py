"""A plain-text summary of each pipeline: champion, its metrics and provenance, endpoint, latest drift."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from mlops_assets.contracts import ArtifactStore, ModelRegistry
from mlops_assets.data.locations import drift_reports
from mlops_assets.governance.audit import describe_decision, read_decisions
from mlops_assets.naming import CHAMPION, StorePrefix, store_key
from mlops_assets.serving.endpoint_state import PING_TIMEOUT_S, crashed_url, running_url


def describe(specs, endpoints: Path, store: ArtifactStore, registry: ModelRegistry) -> str:
    lines = []
    for spec, _ in specs:
        lines.append(f"{spec.name} ({spec.task}, target {spec.target})")
        champion = registry.by_alias(spec.name, CHAMPION)
        if champion is None:
            lines.append("  no champion yet")
            continue
        metrics = registry.metrics(spec.name, champion.version)
        holdout = ", ".join(
            f"{k.removeprefix('holdout_')} {v:.4f}" for k, v in sorted(metrics.items()) if k.startswith("holdout_")
        )
        tags = champion.tags
        lines += [
            f"  champion: version {champion.version} (approved by {tags.get('approved_by', '?')})",
            f"  holdout: {holdout}",
            f"  dataset {tags.get('dataset_hash')}, spec {tags.get('spec_hash')}, code {tags.get('git_sha')}",
            f"  trained on {tags.get('training_rows_by_origin', '?')} rows, trigger {tags.get('trigger', '?')}",
            f"  endpoint: {_endpoint(endpoints, spec.name)}",
        ]
        decisions = read_decisions(store, spec.name)
        if decisions:
            lines.append(f"  last decision: {describe_decision(decisions[-1])}")
        card = store_key(spec.name, StorePrefix.evaluation_reports, f"v{champion.version}", "model_card.md")
        if store.exists(card):
            lines.append(f"  model card: {store.uri(card)}")
        reports = drift_reports(store, spec.name)
        if reports:
            latest = json.loads(store.read_bytes(reports[-1]))
            drifted = latest.get("drifted_features") or []
            lines.append(
                f"  latest drift report: {latest['status']}"
                + (f" ({', '.join(drifted)})" if drifted else "")
                + (f": {latest['verdict']}" if latest.get("verdict") else "")
                + f", {store.uri(reports[-1].removesuffix('.json') + '.md')}"
            )
    return "\n".join(lines)


def _endpoint(endpoints: Path, name: str) -> str:
    """The endpoint's URL and the code path serving its single rows, as its /version says."""
    url = running_url(endpoints, name)
    if url is None:
        crashed = crashed_url(endpoints, name)
        return f"{crashed} is down (crashed): the endpoint supervisor restarts it" if crashed else "not running"
    try:
        with urllib.request.urlopen(f"{url}/version", timeout=PING_TIMEOUT_S) as response:
            served = json.load(response)
    except (OSError, ValueError):
        return f"{url} (not answering /version)"
    return f"{url} (version {served['model_version']}, single rows scored by {served['path']})"
