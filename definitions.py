"""The Dagster code location: every spec under ``MLOPS_PIPELINES`` (default ``pipelines/``), its assets and its
sensors, on the resources of the environment (``MLOPS_ENV``: the embedded default, or production).

``dagster dev -w workspace.yaml``, ``dg launch -f definitions.py`` and a code server (``dagster api grpc -f
definitions.py``) load this file. It imports neither torch nor mlflow: the assets load them when they run.
"""

from mlops_assets.definitions.folder import build_definitions
from resources import resources_from_env
from sensors import build_sensors

defs = build_definitions(resources=resources_from_env(), sensor_factory=build_sensors)
