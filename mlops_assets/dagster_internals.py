"""The few names this package takes from Dagster's private modules (``dagster._...``), in one place.

Dagster 1.13.27 exports no public equivalent of these. Each import says why we need it and what to check when
Dagster is upgraded: a private module may move or change without a deprecation, and the tests that cover these
names (``tests/unit/test_tick.py``, ``tests/unit/definitions/test_component.py``) are the ones to run first.
Everything else goes through ``import dagster as dg``; one more thing to check on upgrade is not an import:
``assets.portfolio.latest_slo_checks`` reads ``instance.event_log_storage.get_asset_check_summary_records``,
which Dagster does not mark public either.
"""

# The tags the sensor daemon puts on the runs it launches: ``mlops-assets tick`` launches the runs of its sensor
# requests itself and must tag them as the daemon does, so the daemon turned on later sees a run key as already
# run. ``dagster`` exports only ``MAX_RUNTIME_SECONDS_TAG`` of its system tags. On upgrade: the values
# ("dagster/run_key", "dagster/sensor_name") must still be what the daemon writes and reads.
from dagster._core.storage.tags import RUN_KEY_TAG, SENSOR_NAME_TAG

# The component's error for a bad spec names the line of defs.yaml, as Dagster's own pass over the attributes does
# (``dagster.components.core.decl``, with this same helper). On upgrade: the signature (position tree, key prefix)
# and that it still re-raises a pydantic ``ValidationError``.
from dagster._utils.pydantic_yaml import enrich_validation_errors_with_source_position

__all__ = ["RUN_KEY_TAG", "SENSOR_NAME_TAG", "enrich_validation_errors_with_source_position"]
