"""A plain-text summary of each pipeline: champion, its metrics and provenance, endpoint, latest drift."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from mlops_assets.contracts import ArtifactStore
from mlops_assets.local.layout import LocalLayout
from mlops_assets.rollout.audit import describe_decision, read_decisions
from mlops_assets.serving.endpoint_state import PING_TIMEOUT_S, crashed_url, running_url


def describe(specs, layout: LocalLayout, store: ArtifactStore) -> str:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=layout.tracking_uri, registry_uri=layout.tracking_uri)
    lines = []
    for spec, _ in specs:
        lines.append(f"{spec.name} ({spec.task}, target {spec.target})")
        try:
            champion = client.get_model_version_by_alias(spec.name, "champion")
        except MlflowException:
            lines.append("  no champion yet")
            continue
        metrics = client.get_run(champion.run_id).data.metrics
        holdout = ", ".join(
            f"{k.removeprefix('holdout_')} {v:.4f}" for k, v in sorted(metrics.items()) if k.startswith("holdout_")
        )
        tags = champion.tags
        lines += [
            f"  champion: version {champion.version} (approved by {tags.get('approved_by', '?')})",
            f"  holdout: {holdout}",
            f"  dataset {tags.get('dataset_hash')}, spec {tags.get('spec_hash')}, code {tags.get('git_sha')}",
            f"  trained on {tags.get('training_rows_by_origin', '?')} rows, trigger {tags.get('trigger', '?')}",
            f"  endpoint: {_endpoint(layout.endpoints, spec.name)}",
        ]
        decisions = read_decisions(store, spec.name)
        if decisions:
            lines.append(f"  last decision: {describe_decision(decisions[-1])}")
        card = layout.data / spec.name / "reports" / "evaluation" / f"v{champion.version}" / "model_card.md"
        if card.exists():
            lines.append(f"  model card: {card}")
        reports = sorted(
            (layout.data / spec.name / "reports" / "drift").glob("*.json"), key=lambda p: p.stat().st_mtime
        )
        if reports:
            latest = json.loads(reports[-1].read_text())
            drifted = latest.get("drifted_features") or []
            lines.append(
                f"  latest drift report: {latest['status']}"
                + (f" ({', '.join(drifted)})" if drifted else "")
                + (f": {latest['verdict']}" if latest.get("verdict") else "")
                + f", {Path(reports[-1]).with_suffix('.md')}"
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
