"""One version's provenance as a tree, from its source files to the endpoint (``mlops-assets lineage`` prints it).

Everything is read from what the version recorded (its registry tags, its MLflow run's metrics and artifacts)
and from the artifact store, never from the spec on disk, which may have changed since. The source files a
snapshot was read from are recorded beside it (older snapshots: in Dagster's record of the ``raw_data``
materialization that wrote it).
"""

from __future__ import annotations

import json
from typing import Any

from mlops_assets.contracts import ArtifactStore
from mlops_assets.data.locations import sources_key
from mlops_assets.errors import MlopsError
from mlops_assets.model.registry import MlflowRegistryClient
from mlops_assets.naming import (
    CHALLENGER,
    CHAMPION,
    PROVENANCE_ARTIFACT,
    PROVENANCE_FOLDER,
    StorePrefix,
    store_key,
)

NOT_RECORDED = "not recorded"


def lineage(
    name: str,
    version: str | None,
    store: ArtifactStore,
    client: MlflowRegistryClient,
    instance=None,
    endpoint: str | None = None,
) -> dict[str, Any]:
    """The tree of ``name`` v``version`` (default: the champion) as one JSON-able document. ``instance``: the
    Dagster instance that ran ``raw_data`` (for the source files); ``endpoint``: the URL serving the pipeline."""
    registered = find_version(client, name, version)
    tags, version = registered.tags, registered.version
    record = json.loads(client.artifact(name, version, f"{PROVENANCE_FOLDER}/{PROVENANCE_ARTIFACT}") or b"{}")
    metrics = client.metrics(name, version)
    snapshot = store_key(name, StorePrefix.raw, f"{tags.get('dataset_hash')}.parquet")
    feedback_hash = tags.get("feedback_hash", "none")
    label_quarantine = store_key(name, StorePrefix.feedback, f"{feedback_hash}-labels-quarantine.parquet")
    sha = tags.get("git_sha", "unknown")
    aliases = [alias for alias in (CHAMPION, CHALLENGER) if _alias_version(client, name, alias) == version]
    return {
        "pipeline": name,
        "version": version,
        "source": {
            "files": source_files(store, instance, name, tags.get("dataset_hash")),
            "snapshot": store.uri(snapshot),
            "snapshot_hash": tags.get("dataset_hash"),
            "rows": _rows(store, snapshot),
            "quarantined_rows": _int(tags.get("quarantined_rows", record.get("quarantined_rows"))),
        },
        "feedback": {
            "hash": feedback_hash,
            "rows_by_origin": _json(tags.get("training_rows_by_origin")),
            "label_rows_quarantined": _rows(store, label_quarantine) if feedback_hash != "none" else 0,
        },
        "training_set": {
            "key": tags.get("training_set"),
            "hash": tags.get("training_set_hash", NOT_RECORDED),
            "rows": _rows(store, tags.get("training_set")),
            "features_version": tags.get("features_version"),
            "holdout_hashes": {k: v for k, v in record.get("content_hashes", {}).items() if k != "train"},
            "adaptation": _json(tags.get("adaptation", "none")),
        },
        "model": {
            "version": version,
            "mlflow_run_id": registered.run_id,
            "estimator": tags.get("estimator"),
            "params": client.params(name, version),
            "seed": _json(tags.get("seed", "null")) if "seed" in tags else NOT_RECORDED,
            "device": tags.get("device"),
            "spec_hash": tags.get("spec_hash"),
            "spec_file_hash": tags.get("spec_file_hash", NOT_RECORDED),
            "spec_location": tags.get("spec_location"),
            "git_sha": sha.removesuffix("-dirty"),
            "git_dirty": sha.endswith("-dirty"),
            "package_version": tags.get("package_version"),
            "environment_digest": tags.get("environment_digest", NOT_RECORDED),
            "trigger": tags.get("trigger"),
            "dagster_run_id": tags.get("dagster_run_id"),
        },
        "evaluation": {
            "metrics": {k: v for k, v in sorted(metrics.items()) if k.startswith("holdout_")},
            "gate": tags.get("gate", "not evaluated"),
            "evidence": store.uri(store_key(name, StorePrefix.evaluation_reports, f"v{version}")),
        },
        "deployment": {
            "aliases": aliases,
            "approved_by": tags.get("approved_by"),
            "deployed_at": tags.get("deployed_at"),
            "previous_champion": tags.get("previous_champion"),
            "endpoint": (endpoint or "not running") if CHAMPION in aliases else None,
        },
    }


def find_version(client: MlflowRegistryClient, name: str, version: str | None):
    """The registered version (the champion for ``None``), or a ``MlopsError`` saying there is none."""
    if version is None:
        champion = client.by_alias(name, CHAMPION)
        if champion is None:
            raise MlopsError(f"{name} has no champion: name a version with --version")
        return champion
    registered = client.find(name, version)
    if registered is None:
        raise MlopsError(f"{name} has no registered version {version}")
    return registered


def _alias_version(client: MlflowRegistryClient, name: str, alias: str) -> str | None:
    registered = client.by_alias(name, alias)
    return registered.version if registered else None


def source_files(store: ArtifactStore, instance, name: str, dataset_hash: str | None) -> list[str] | str:
    """The data and label files the snapshot ``dataset_hash`` was first read from: recorded beside it in the
    store; for a snapshot written before that record, in the ``raw_data`` materialization Dagster kept."""
    key = sources_key(name, dataset_hash or "")
    if store.exists(key):
        recorded = json.loads(store.read_bytes(key))
        return [*recorded["source_files"], *recorded["label_files"]]
    if instance is None:
        return f"{NOT_RECORDED} (no Dagster instance: set DAGSTER_HOME)"
    import dagster as dg

    records = instance.fetch_materializations(dg.AssetKey([name, "raw_data"]), limit=1000).records
    for record in records:
        metadata = record.asset_materialization.metadata
        if getattr(metadata.get("content_hash"), "value", None) == dataset_hash:
            files = [*metadata["source_files"].value, *getattr(metadata.get("label_files"), "value", [])]
            return [str(f) for f in files]
    return f"{NOT_RECORDED} (no raw_data materialization of {dataset_hash} in this Dagster instance)"


def _rows(store: ArtifactStore, key: str | None) -> int | None:
    return store.row_count(key) if key and store.exists(key) else None


def _int(value) -> int | None:
    return None if value is None else int(value)


def _json(text: str | None):
    try:
        return json.loads(text) if text is not None else None
    except ValueError:
        return text


def render(tree: dict[str, Any]) -> str:
    """The tree as indented text: each stage under the one it came from."""
    source, feedback, training = tree["source"], tree["feedback"], tree["training_set"]
    model, evaluation, deployment = tree["model"], tree["evaluation"], tree["deployment"]
    files = source["files"] if isinstance(source["files"], list) else [source["files"]]
    dirty = " (dirty: uncommitted changes)" if model["git_dirty"] else ""
    metrics = ", ".join(f"{k.removeprefix('holdout_')} {v:.4f}" for k, v in evaluation["metrics"].items())
    lines = [
        f"{tree['pipeline']} v{tree['version']}",
        "source files",
        *(f"  {file}" for file in files),
        f"  -> snapshot {source['snapshot_hash']} ({source['rows']} rows, {source['quarantined_rows']} quarantined)",
        f"     {source['snapshot']}",
        f"    -> feedback {feedback['hash']} (training rows by origin {feedback['rows_by_origin']}, "
        f"{feedback['label_rows_quarantined']} label rows quarantined)",
        f"      -> training set {training['hash']} ({training['rows']} rows, features {training['features_version']})",
        f"         {training['key']}",
        f"        -> model v{model['version']} {model['estimator']} on {model['device']}, run {model['mlflow_run_id']}",
        f"           params {model['params']}, seed {model['seed']}",
        f"           spec {model['spec_hash']} (file {model['spec_file_hash']}, {model['spec_location']})",
        f"           code {model['git_sha']}{dirty}, package {model['package_version']}, "
        f"environment {model['environment_digest']}",
        f"           trigger {model['trigger']}, Dagster run {model['dagster_run_id']}",
        f"          -> evaluation: gate {evaluation['gate']}; {metrics or 'no holdout metrics'}",
        f"             evidence {evaluation['evidence']}",
        f"            -> deployment: {_deployment(deployment)}",
    ]
    return "\n".join(lines)


def _deployment(deployment: dict[str, Any]) -> str:
    if not deployment["aliases"] and not deployment["deployed_at"]:
        return "never deployed"
    where = f", serving at {deployment['endpoint']}" if deployment["endpoint"] else ""
    aliases = ", ".join(deployment["aliases"]) or "no alias now"
    return f"{aliases}; approved by {deployment['approved_by']} at {deployment['deployed_at']}{where}"
