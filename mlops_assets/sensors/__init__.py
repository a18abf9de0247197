"""Sensors built from each spec: they close the loop from traffic, labels and online metrics to retraining."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.naming import asset_keys
from mlops_assets.sensors.drift import build_drift_sensor
from mlops_assets.sensors.endpoint_checks import build_endpoint_checks_sensor
from mlops_assets.sensors.failures import build_failure_sensor
from mlops_assets.sensors.labels import build_labels_sensor
from mlops_assets.sensors.performance import build_performance_sensor
from mlops_assets.sensors.supervisor import build_endpoint_supervisor

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec


def build_sensors(spec: PipelineSpec, spec_path: Path) -> list[dg.SensorDefinition]:
    """Drift sensor, endpoint supervisor and endpoint checks always; labels sensor when the spec has a labels source;
    performance sensor when it declares an online metric; a run failure sensor when it has alerts.

    A retraining re-materializes the whole pipeline: an unchanged source or feedback set is reused by its
    content hash, and new feedback is what the retraining learns from.
    """
    keys = asset_keys(spec.name)
    names = ["raw_data", *(["feedback"] if spec.source.labels else []), "validated_features"]
    names += ["trained_model", "evaluation_report", "deployed_endpoint", "drift_report"]
    retrain = [keys[n] for n in names]
    sensors = [build_drift_sensor(spec, keys, retrain), build_endpoint_supervisor(spec)]
    sensors.append(build_endpoint_checks_sensor(spec))
    if spec.source.labels is not None:
        sensors.append(build_labels_sensor(spec, spec_path, keys["drift_report"], retrain))
    if spec.monitoring.performance is not None:
        sensors.append(build_performance_sensor(spec, keys["drift_report"], retrain))
    if spec.alerts:
        sensors.append(build_failure_sensor(spec))
    return sensors
