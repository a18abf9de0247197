"""The endpoint supervisor: an endpoint that crashed is started again on its address, serving the champion,
and the restart is recorded in the audit log.

A tick asks the deployer whether the endpoint crashed: a state read and a ``/ping``. An endpoint that was never
started, or that a person stopped, is left alone; so is one that is slow to answer (busy, its port still taken).
The restart goes through the deployer, so each environment restarts its own way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.contracts import ArtifactStore, EndpointDeployer, ModelRegistry
from mlops_assets.governance.audit import record_decision
from mlops_assets.naming import CHAMPION, DecisionAction

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec

SUPERVISOR = "endpoint supervisor"  # who the audit log says acted
SUPERVISOR_INTERVAL_S = 10  # between two pings: how long a crashed endpoint may stay down before it is seen


def build_endpoint_supervisor(spec: PipelineSpec) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{spec.name}_endpoint_supervisor",
        description=f"Restarts the {spec.name} endpoint on its address when it crashed, and records the restart.",
        minimum_interval_seconds=SUPERVISOR_INTERVAL_S,
        default_status=dg.DefaultSensorStatus(spec.retraining.sensors.upper()),
    )
    def endpoint_supervisor(
        context: dg.SensorEvaluationContext, deployer: EndpointDeployer, registry: ModelRegistry, store: ArtifactStore
    ):
        url = deployer.crashed(spec.name)
        if url is None:
            return dg.SkipReason("the endpoint answers, or is not meant to run")
        champion = registry.by_alias(spec.name, CHAMPION)
        record = {
            "model_version": champion.version if champion else None,
            "previous_version": None,
            "approved_by": SUPERVISOR,
            "url": url,
        }
        try:
            deployer.restart(spec.name)
        except Exception as exc:
            reason = f"nothing answered at {url}; the restart failed: {exc}"
            record_decision(store, spec.name, {**record, "action": DecisionAction.restart_failed, "reasons": [reason]})
            context.log.error(reason)
            return dg.SkipReason(reason)
        reason = f"nothing answered at {url} (connection refused): started again on the same address"
        record_decision(store, spec.name, {**record, "action": DecisionAction.restart, "reasons": [reason]})
        context.log.warning(f"{spec.name}: {reason}, serving v{record['model_version']}")
        return dg.SkipReason(f"restarted the endpoint at {url}")

    return endpoint_supervisor
