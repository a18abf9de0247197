"""Every spec in a folder as one ``dagster.Definitions``; a spec that cannot be used becomes a placeholder."""

from __future__ import annotations

import contextlib
import gc
import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import dagster as dg

from mlops_assets.assets import build_pipeline_assets, build_pipeline_checks
from mlops_assets.assets.feature_view import build_feature_view_asset
from mlops_assets.assets.portfolio import build_portfolio
from mlops_assets.definitions.known_warnings import silence_known_warnings
from mlops_assets.environment import pipelines_folder
from mlops_assets.errors import SpecError
from mlops_assets.sensors import build_sensors
from mlops_assets.sensors.portfolio import build_portfolio_automation
from mlops_assets.spec import PipelineSpec, read_specs
from mlops_assets.spec.loading import read_views

if TYPE_CHECKING:  # imported where it is built (the environment's), not where the code location loads
    from mlops_assets.resources import Resources

SensorFactory = Callable[[PipelineSpec, Path], list[dg.SensorDefinition]]
SPEC_ERROR_GROUP = "spec_errors"
SPEC_ERROR_ASSET = "spec_error"

log = logging.getLogger(__name__)


def build_definitions(
    pipelines: str | Path | None = None,
    resources: Resources | Mapping[str, object] | None = None,
    sensor_factory: SensorFactory | None = build_sensors,
) -> dg.Definitions:
    """Assets and sensors for each spec under ``pipelines`` (default: ``MLOPS_PIPELINES`` or ``pipelines/``), an
    asset per feature view of its ``feature_views`` folder, and the ``portfolio`` over them with its sensor and
    schedule.

    ``sensor_factory`` builds a spec's sensors: the framework's loop (``mlops_assets.sensors.build_sensors``) by
    default, a project's own factory (the code location passes ``sensors.build_sensors``), or ``None`` for assets
    alone, without the portfolio's sensor and schedule either.

    A broken spec must not take the other pipelines and their sensors down with it: it is logged and shown
    in the Dagster UI as the asset ``<file stem>/spec_error`` (group ``spec_errors``) whose description
    lists its problems and whose materialization fails with them.

    The in-process executor is the default: Dagster's multiprocess executor starts a process, and so imports
    Dagster again, for every step, which costs more than most steps; the scale-out resources bring their own
    executor.

    ``resources`` are the environment's (``mlops_assets.resources.Resources``), or some of them by key (a test's).
    """
    silence_known_warnings()
    by_key = dict(resources or {}) if resources is None or isinstance(resources, Mapping) else resources.by_key()
    with _without_gc():
        return _build(Path(pipelines) if pipelines else pipelines_folder(), by_key, sensor_factory)


@contextlib.contextmanager
def _without_gc():
    """The build allocates many long-lived objects and frees almost none: the collector's full passes over
    the growing heap find nothing to collect, and a folder of many specs paid for several of them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _build(folder: Path, resources: Mapping[str, object] | None, sensor_factory: SensorFactory | None):
    specs, broken = read_specs(folder)
    for error in broken:
        log.error("%s", error)
    assets: list[dg.AssetsDefinition | dg.AssetSpec] = [
        build_feature_view_asset(v, path) for v, path in read_views(folder)[0]
    ]
    checks: list[dg.AssetChecksDefinition] = []
    sensors: list[dg.SensorDefinition] = []
    schedules: list[dg.ScheduleDefinition] = []
    loaded: list[PipelineSpec] = []
    for spec, path in specs:
        try:
            built = pipeline_definitions(spec, path, sensor_factory)
        except Exception as exc:  # a bug one spec reveals is shown on it, the other pipelines still load
            log.exception("pipeline spec %s: its assets could not be built", path)
            broken.append(SpecError(str(path), [f"its assets could not be built: {type(exc).__name__}: {exc}"]))
            continue
        assets += built.assets
        checks += built.checks
        sensors += built.sensors
        loaded.append(spec)
    if loaded:
        assets.append(build_portfolio(loaded))
        if sensor_factory is not None:
            sensor, schedule = build_portfolio_automation(loaded)
            sensors.append(sensor)
            schedules.append(schedule)
    return dg.Definitions(
        assets=where_they_run(assets, resources or {}) + spec_error_assets(broken),
        asset_checks=checks,
        sensors=sensors,
        schedules=schedules,
        resources=dict(resources or {}),
        executor=dg.in_process_executor,
    )


# The resources whose place of work shows on an asset: trained_model where the trainer runs, deployed_endpoint
# where the deployer serves.
RUNS_ON = {"trainer": "trained_model", "deployer": "deployed_endpoint"}


def where_they_run(assets: list, resources: Mapping[str, object]) -> list:
    """The kind (UI badge) of where a resource does its work, on the assets it does it for: the specs say what a
    pipeline is, the environment's resources where it runs (``kubernetes`` for pods), so it is added here."""
    places = {name: getattr(resources.get(r), "runs_on", None) for r, name in RUNS_ON.items()}
    places = {name: place for name, place in places.items() if place}
    if not places:
        return assets

    def placed(spec: dg.AssetSpec) -> dg.AssetSpec:
        place = places.get(spec.key.path[-1])
        return spec.merge_attributes(kinds={place}) if place else spec

    return [a.map_asset_specs(placed) if isinstance(a, dg.AssetsDefinition) else a for a in assets]


class PipelineDefinitions(NamedTuple):
    assets: list[dg.AssetsDefinition | dg.AssetSpec]
    checks: list[dg.AssetChecksDefinition]
    sensors: list[dg.SensorDefinition]


def pipeline_definitions(
    spec: PipelineSpec, spec_path: Path, sensor_factory: SensorFactory | None = build_sensors
) -> PipelineDefinitions:
    """One spec's assets and sensors: what a spec file in the folder and a ``MLPipelineComponent`` both build
    (``sensor_factory`` as for ``build_definitions``)."""
    return PipelineDefinitions(
        build_pipeline_assets(spec, spec_path),
        build_pipeline_checks(spec, spec_path),
        sensor_factory(spec, spec_path) if sensor_factory else [],
    )


def spec_error_assets(errors: list[SpecError]) -> list[dg.AssetsDefinition]:
    """One placeholder asset per broken spec file, keyed by its file name (pipeline names may be missing)."""
    assets, used = [], set()
    for error in errors:
        prefix = re.sub(r"[^A-Za-z0-9_]", "_", Path(error.path).stem) or "spec"
        while prefix in used:  # my-spec.yaml and my_spec.yaml
            prefix += "_"
        used.add(prefix)
        assets.append(_spec_error_asset(prefix, error))
    return assets


def _spec_error_asset(prefix: str, error: SpecError) -> dg.AssetsDefinition:
    problems = "\n".join(f"- {p}" for p in error.problems)
    metadata = {"spec_file": dg.MetadataValue.path(error.path), "problems": dg.MetadataValue.md(problems)}

    @dg.asset(
        key=[prefix, SPEC_ERROR_ASSET],
        group_name=SPEC_ERROR_GROUP,
        description=f"This pipeline is not loaded: its spec {error.path} is invalid.\n\n{problems}",
        metadata=metadata,
    )
    def spec_error() -> None:
        raise dg.Failure(description=str(error), metadata=metadata)

    return spec_error
