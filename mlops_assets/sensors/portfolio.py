"""When ``portfolio`` is written again: on a schedule, and whenever a model changes.

A model changes when one of its pipeline's ``evaluation_report`` (a new challenger judged), ``deployed_endpoint``
(champion moved, rolled out or back) or ``drift_report`` materializes. The sensor asks the instance for the newest
materialization of all of them in one query per tick and requests one run for everything new since its cursor,
so a burst of changes over many pipelines is one portfolio run. A plain sensor rather than an automation
condition: ``mlops-assets tick`` drives it as the daemon does, and no instance setting has to enable it.

``MLOPS_PORTFOLIO_CRON`` (default hourly, ``0 * * * *``) sets the schedule, which catches what no materialization
announces: an endpoint that went down, an SLO check that failed, an approval given from the CLI.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import dagster as dg

from mlops_assets.assets.portfolio import PORTFOLIO_KEY
from mlops_assets.errors import MlopsError
from mlops_assets.naming import PORTFOLIO, asset_keys

PORTFOLIO_CRON_ENV = "MLOPS_PORTFOLIO_CRON"
DEFAULT_CRON = "0 * * * *"
MODEL_CHANGES = ("evaluation_report", "deployed_endpoint", "drift_report")  # what says a model changed
SENSOR_INTERVAL_S = 60  # changes within a minute make one run


def portfolio_schedule(running: bool = False, environ: Mapping[str, str] | None = None) -> dg.ScheduleDefinition:
    """The portfolio's schedule, at the cron string of ``MLOPS_PORTFOLIO_CRON``; one Dagster refuses (it checks the
    string when the schedule is built) is an error naming the variable."""
    cron = (os.environ if environ is None else environ).get(PORTFOLIO_CRON_ENV) or DEFAULT_CRON
    try:
        return dg.ScheduleDefinition(
            name=f"{PORTFOLIO}_schedule",
            cron_schedule=cron,
            target=[PORTFOLIO_KEY],
            description=f"Writes the portfolio on a schedule ({PORTFOLIO_CRON_ENV}, default hourly).",
            default_status=dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED,
        )
    except dg.DagsterInvalidDefinitionError:
        raise MlopsError(
            f"{PORTFOLIO_CRON_ENV}={cron!r} is not a cron string (e.g. {DEFAULT_CRON!r}: hourly)"
        ) from None


def build_portfolio_automation(specs: Sequence) -> tuple[dg.SensorDefinition, dg.ScheduleDefinition]:
    """The portfolio's sensor and schedule. They start running when any spec's sensors do
    (``retraining.sensors``): a folder whose loop is driven by hand keeps its portfolio by hand too."""
    running = any(spec.retraining.sensors == "running" for spec in specs)
    watched = [asset_keys(spec.name)[name] for spec in specs for name in MODEL_CHANGES]

    @dg.sensor(
        name=f"{PORTFOLIO}_sensor",
        description="Writes the portfolio again when a model changed: a judged challenger, a deployment, a drift "
        "report.",
        asset_selection=[PORTFOLIO_KEY],
        minimum_interval_seconds=SENSOR_INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED,
    )
    def portfolio_sensor(context: dg.SensorEvaluationContext):
        records = context.instance.get_asset_records(watched)
        newest = max((r.asset_entry.last_materialization_storage_id or 0 for r in records), default=0)
        if newest <= int(context.cursor or 0):
            return dg.SkipReason("no model changed since the last portfolio")
        context.update_cursor(str(newest))
        return dg.RunRequest(run_key=f"{PORTFOLIO}:{newest}", asset_selection=[PORTFOLIO_KEY])

    return portfolio_sensor, portfolio_schedule(running)
