"""The Dagster code location: every spec under ``MLOPS_PIPELINES`` (default ``pipelines/``), its six assets
and its sensors, on the resources of the embedded default.

``dagster dev -w workspace.yaml`` and ``dagster asset materialize -f definitions.py`` load this file. It
imports neither torch nor mlflow: the assets load them when they run.
"""

from mlops_assets.definitions.folder import build_definitions
from mlops_assets.local.layout import LocalLayout
from resources import local_resources
from sensors import build_sensors

defs = build_definitions(resources=local_resources(LocalLayout.from_env()), sensor_factory=build_sensors)
