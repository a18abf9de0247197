"""Sensors ticked through Dagster's own API, and their run requests materialized in this process.

What the daemon does, without the daemon: ``mlops-assets tick`` (the demo closes the loop with it), the
loop bench and the tests use it. Runs carry the sensor's name and run key as the daemon's do, and a run
key that already ran is skipped as the daemon skips it, so the daemon turned on later repeats nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from mlops_assets.dagster_internals import RUN_KEY_TAG, SENSOR_NAME_TAG
from mlops_assets.naming import OUTCOME_TAG, PORTFOLIO, TRIGGER_TAG

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass(frozen=True)
class Launched:
    sensor: str
    request: dg.RunRequest
    result: dg.ExecuteInProcessResult | None  # None: the run key had already run
    outcome: str | None = None  # what the run's deployment decided (its OUTCOME_TAG), e.g. the champion kept

    def summary(self) -> str:
        """One line: what the run did, from its materializations' metadata and its checks' verdicts."""
        if self.result is None:
            return f"{self.request.run_key}: already ran"
        outcome = "ok" if self.result.success else "FAILED"
        facts = []
        for event in self.result.get_asset_materialization_events():
            materialization = event.event_specific_data.materialization
            values = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
            name = materialization.asset_key.path[-1]
            if name == "drift_report":
                facts.append(f"drift report {values['window_end']}: {values.get('verdict', values['status'])}")
            elif name == "trained_model":
                facts.append(f"v{values['model_version']} trained ({values['trigger']})")
            elif name == "deployed_endpoint":
                facts.append(f"v{values['model_version']} serves ({values['action']})")
            elif name == PORTFOLIO:
                facts.append(
                    f"portfolio of {values['pipelines']} pipeline(s), {values['needing_attention']} needing attention"
                )
        passed = []
        for event in self.result.all_events:
            if event.event_type_value == "ASSET_CHECK_EVALUATION":
                evaluation = event.event_specific_data
                if not evaluation.passed:
                    facts.append(f"check {evaluation.check_name} failed on {evaluation.asset_key.path[-1]}")
                elif not self.request.asset_selection:  # a run of checks alone: say which passed
                    passed.append(evaluation.check_name)
        if passed:
            facts.append(f"checks passed: {', '.join(passed)}")
        if self.outcome:
            facts.append(self.outcome)
        skipped = [e for e in self.result.all_events if e.event_type_value == "STEP_SKIPPED"]
        return f"{self.request.tags.get(TRIGGER_TAG, self.request.run_key)}: {outcome}; " + (
            "; ".join(facts) + (f"; {len(skipped)} step(s) skipped" if skipped else "") or "nothing materialized"
        )


class SensorDriver:
    """The sensors of ``defs``, cursors kept between ticks (in ``cursor_file`` when given, so they
    outlive the process, as the daemon keeps them in its storage)."""

    def __init__(
        self,
        defs: dg.Definitions,
        instance: dg.DagsterInstance,
        resources: Mapping[str, Any],
        cursor_file: Path | None = None,
        run_config: Mapping[str, Any] | None = None,
    ):
        self.defs, self.instance, self.resources = defs, instance, dict(resources)
        self.cursor_file, self.run_config = cursor_file, dict(run_config or QUIET)
        self.sensors = {s.name: s for s in defs.sensors or []}
        self.cursors: dict[str, str | None] = {}
        if cursor_file is not None and cursor_file.exists():
            self.cursors = json.loads(cursor_file.read_text())

    def tick(self, name: str):
        """One evaluation of sensor ``name``; its cursor moves as the daemon's would."""
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursors.get(name), resources=self.resources, definitions=self.defs
        )
        data = self.sensors[name].evaluate_tick(context)
        self.cursors[name] = data.cursor
        if self.cursor_file is not None:
            self.cursor_file.parent.mkdir(parents=True, exist_ok=True)
            self.cursor_file.write_text(json.dumps(self.cursors))
        return data

    def launch(self, sensor: str, request: dg.RunRequest) -> Launched:
        """Materialize what ``request`` asks for, unless a run with its key already ran for ``sensor``."""
        if request.run_key and self._already_ran(sensor, request.run_key):
            return Launched(sensor, request, None)
        tags = {**(request.tags or {}), SENSOR_NAME_TAG: sensor}
        if request.run_key:
            tags[RUN_KEY_TAG] = request.run_key
        selection = dg.AssetSelection.assets(*request.asset_selection)
        if request.asset_check_keys is not None:  # the checks the daemon would run: evaluate_tick names them all
            selection = selection.without_checks() | dg.AssetSelection.checks(*request.asset_check_keys)
        result = dg.materialize(
            [a for a in [*self.defs.assets, *(self.defs.asset_checks or [])] if isinstance(a, dg.AssetsDefinition)],
            selection=selection,
            resources=self.resources,
            instance=self.instance,
            tags=tags,
            raise_on_error=False,
            run_config={**self.run_config, **(request.run_config or {})},
        )
        run = self.instance.get_run_by_id(result.run_id)
        return Launched(sensor, request, result, run.tags.get(OUTCOME_TAG) if run else None)

    def step(self, names: list[str]) -> list[Launched]:
        """Tick each sensor once and launch what it asks for, in order."""
        return [self.launch(name, request) for name in names for request in self.tick(name).run_requests or []]

    def _already_ran(self, sensor: str, run_key: str) -> bool:
        runs = self.instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: run_key}))
        return any(run.tags.get(SENSOR_NAME_TAG) == sensor for run in runs)
