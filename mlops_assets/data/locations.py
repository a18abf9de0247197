"""Where files are, without reading them: what sensor ticks and the code location can afford to import."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_assets.naming import StorePrefix, store_key

if TYPE_CHECKING:  # the endpoint and the CLI read locations without importing Dagster
    from mlops_assets.contracts import ArtifactStore

EVALUATION_FOLDER = "evaluation"  # artifact folder of a version's run holding its evaluation
HOLDOUT_INPUTS = "holdout_inputs.parquet"  # in that folder: the inputs a compiled fast path must reproduce on


def list_files(pattern: str, base_dir: Path) -> list[str]:
    """CSV/parquet files matching ``pattern`` (a file, glob or folder), in name order."""
    location = base_dir / pattern
    files = sorted(glob.glob(str(location / "*"))) if location.is_dir() else sorted(glob.glob(str(location)))
    return [f for f in files if f.endswith((".parquet", ".csv", ".csv.gz"))]


def log_prefix(pipeline: str) -> str:
    """Artifact-store prefix of a pipeline's inference log."""
    return store_key(pipeline, StorePrefix.inference_log)


def shadow_log_prefix(pipeline: str) -> str:
    """Artifact-store prefix of the shadow model's answers: beside the inference log, never inside it, so
    drift windows and sensors count each production row once."""
    return store_key(pipeline, StorePrefix.shadow_log)


def log_files(store: ArtifactStore, prefix: str) -> list[str]:
    """Inference log files in the order they were written (their names start with the write time)."""
    return [k for k in store.list(prefix) if k.endswith(".parquet")]
