"""The pipelines a command names: a spec file, a folder of specs or a pipeline's name, looked up in
``MLOPS_PIPELINES`` (default ``pipelines``)."""

from __future__ import annotations

from pathlib import Path

from mlops_assets.environment import pipelines_folder
from mlops_assets.errors import MlopsError
from mlops_assets.spec import PipelineSpec, load_spec, load_specs, read_specs

PIPELINE_HELP = "the pipeline: its spec file, or its name (its spec in MLOPS_PIPELINES, default pipelines/)"


def pipeline_spec(value: str) -> tuple[PipelineSpec, Path]:
    """A spec file, or the name of a pipeline whose spec is in ``MLOPS_PIPELINES`` (default ``pipelines``)."""
    if Path(value).is_file():
        return load_spec(value), Path(value)
    folder = pipelines_folder()
    specs = read_specs(folder)[0] if folder.is_dir() else []  # a broken neighbour does not hide this one
    for spec, path in specs:
        if spec.name == value:
            return spec, path
    names = ", ".join(sorted(spec.name for spec, _ in specs)) or "none"
    raise MlopsError(f"{value} is neither a spec file nor a pipeline in {folder}/ (pipelines there: {names})")


def pipeline_specs(values: list[str]) -> list[tuple[PipelineSpec, Path]]:
    """Pipelines named by spec files, folders of specs or pipeline names; none named: every pipeline in
    ``MLOPS_PIPELINES`` (default ``pipelines``)."""
    if not values:
        folder = pipelines_folder()
        if not folder.is_dir():
            raise MlopsError(f"no pipelines folder {folder}/: name one, or set MLOPS_PIPELINES")
        return load_specs(folder)
    return [
        item for value in values for item in (load_specs(value) if Path(value).is_dir() else [pipeline_spec(value)])
    ]
