"""Every spec in a folder as one ``dagster.Definitions``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import dagster as dg

from mlops_assets.factory import build_pipeline_assets
from mlops_assets.spec import load_specs


def build_definitions(
    pipelines: str | Path | None = None, resources: Mapping[str, object] | None = None
) -> dg.Definitions:
    """Assets for each spec under ``pipelines`` (default: ``MLOPS_PIPELINES`` or ``pipelines/``).

    The in-process executor is the default: a process per step costs a Dagster import each (18 s vs 3.5 s
    for six trivial assets, field notes); the scale-out resources bring their own executor.
    """
    folder = Path(pipelines or os.environ.get("MLOPS_PIPELINES", "pipelines"))
    assets = [asset for spec, path in load_specs(folder) for asset in build_pipeline_assets(spec, path)]
    return dg.Definitions(assets=assets, resources=dict(resources or {}), executor=dg.in_process_executor)
