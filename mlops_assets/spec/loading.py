"""Reading specs: one file, or every file of a folder; every problem of a spec reported at once, each naming
the file and the field."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from mlops_assets.errors import SpecError
from mlops_assets.naming import COMPONENT_TYPE, FEATURE_VIEWS
from mlops_assets.spec.feature_view import (
    FeatureView,
    FeatureViewError,
    load_feature_views,
    read_feature_views,
    spec_view_problems,
)
from mlops_assets.spec.pipeline import PipelineSpec
from mlops_assets.spec.problems import describe_all, one_per_name
from mlops_assets.spec.safe_yaml import load_yaml


def load_spec(path: str | Path, views: dict[str, FeatureView] | None = None) -> PipelineSpec:
    """Read and validate one spec, a spec file or the ``defs.yaml`` of an ``MLPipelineComponent`` (the trainer
    and the endpoint read a component's spec from there); its relative paths resolve against its folder.

    A spec that names feature views is checked against ``views``, by default those of the ``feature_views``
    folder beside it: an unknown view or feature is an error naming the field and the file."""
    path = Path(path)
    raw = load_yaml(path)
    if isinstance(raw, dict) and raw.get("type") == COMPONENT_TYPE:
        raw = raw.get("attributes")  # a dg project's defs.yaml: the spec is the component's attributes
    if not isinstance(raw, dict):
        raise SpecError(str(path), ["the top level must be a mapping of fields"])
    try:
        spec = PipelineSpec.model_validate(raw, context={"base_dir": path.parent})
    except ValidationError as exc:
        raise SpecError(str(path), describe_all(exc.errors(), PipelineSpec)) from None
    if spec.features.views:
        if views is None:
            try:
                views = load_feature_views(path.parent / FEATURE_VIEWS)
            except FeatureViewError as exc:
                raise SpecError(str(path), [f"features.views: its views cannot be read: {exc}"]) from None
        problems = spec_view_problems(spec, views)
        if problems:
            raise SpecError(str(path), problems)
    return spec


def read_views(folder: str | Path) -> tuple[list[tuple[FeatureView, Path]], list[SpecError]]:
    """The good views of the ``feature_views`` folder beside the specs of ``folder``, and an error per file that
    is not (none without such a folder)."""
    views_folder = Path(folder) / FEATURE_VIEWS
    return read_feature_views(views_folder) if views_folder.is_dir() else ([], [])


def read_specs(folder: str | Path) -> tuple[list[tuple[PipelineSpec, Path]], list[SpecError]]:
    """Every good ``*.yaml``/``*.yml`` spec in ``folder`` with its resolved path, and a ``SpecError`` per
    file that is not (a broken file of its ``feature_views`` folder included): the code location serves the
    good ones and shows the others, ``validate`` refuses all.
    Files that declare the same pipeline name are all refused: picking one could serve the wrong model."""
    good_views, problems = read_views(folder)
    views = {view.name: view for view, _ in good_views}
    loaded = []
    for path in sorted(Path(folder).glob("*.y*ml")):
        try:
            loaded.append((load_spec(path, views), path.resolve()))
        except SpecError as exc:
            problems.append(exc)
    specs, refused = one_per_name(
        loaded, lambda spec: spec.name, lambda path, why: SpecError(str(path), [f"name: pipeline {why}"])
    )
    return specs, [*problems, *refused]


def load_specs(folder: str | Path) -> list[tuple[PipelineSpec, Path]]:
    """Every spec in ``folder`` with its resolved path, or one ``SpecError`` with all problems of all files."""
    specs, problems = read_specs(folder)
    if problems:
        raise SpecError(str(folder), [str(p) for p in problems])
    return specs
