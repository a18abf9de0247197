"""Sensors built from each spec: they close the loop from traffic, labels and online metrics to retraining."""

from pathlib import Path

import dagster as dg

from mlops_assets.factory import ASSET_NAMES
from sensors.drift import build_drift_sensor
from sensors.labels import build_labels_sensor
from sensors.performance import build_performance_sensor


def build_sensors(spec, spec_path: Path) -> list[dg.SensorDefinition]:
    """Drift sensor always; labels sensor when the spec has a labels source; performance sensor when it
    declares an online metric."""
    keys = {name: dg.AssetKey([spec.name, name]) for name in ASSET_NAMES}
    after_training = [keys[n] for n in ("trained_model", "evaluation_report", "deployed_endpoint", "drift_report")]
    sensors = [build_drift_sensor(spec, keys, after_training)]
    if spec.source.labels is not None:
        sensors.append(build_labels_sensor(spec, spec_path, list(keys.values())))
    if spec.monitoring.performance is not None:
        sensors.append(build_performance_sensor(spec, keys["drift_report"], after_training))
    return sensors
