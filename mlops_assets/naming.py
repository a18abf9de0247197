"""Names shared by the assets, the sensors, the CLI, the endpoint and the tests: each defined once, here.

Cheap to import (no Dagster at import time): the endpoint and the training process use it too.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dagster as dg

ASSET_NAMES = (
    "raw_data",
    "feedback",
    "validated_features",
    "trained_model",
    "evaluation_report",
    "deployed_endpoint",
    "drift_report",
)
EXTERNAL_ASSET_NAMES = ("inference_log", "labels")  # written outside Dagster: the endpoint, the label feed

COMPONENT_TYPE = "mlops_assets.MLPipelineComponent"  # a pipeline's `type` in a dg project's defs.yaml

# MLflow registry aliases: the version serving, and the newest trained version awaiting its gate
CHAMPION = "champion"
CHALLENGER = "challenger"

# run tags
PIPELINE_TAG = "mlops/pipeline"
RETRAIN_TAG = "mlops/retrain"  # "true" on automatic retrainings: what the cooldown and budget count
TRIGGER_TAG = "mlops/trigger"  # why a run started; travels into the model version's tags
APPROVER_TAG = "mlops/approved_by"
ADAPTATION_TAG = "mlops/adapt_to"  # the drifted window (artifact-store key) a retraining weights toward
WINDOW_END_TAG = "mlops/window_end_row"  # a drift report's window: the logged rows that end at this count
WINDOW_PREFIX = "rows "  # how such a window is named in its report ("rows 200-400"), as the drift sensor reads it


def asset_keys(pipeline: str) -> dict[str, dg.AssetKey]:
    """Every asset key of a pipeline, by asset name: ``<pipeline>/<asset>``."""
    import dagster as dg

    return {name: dg.AssetKey([pipeline, name]) for name in (*ASSET_NAMES, *EXTERNAL_ASSET_NAMES)}


class StorePrefix(StrEnum):
    """What a pipeline keeps in the artifact store, each kind under ``<pipeline>/<prefix>/`` (``store_key``)."""

    raw = "raw"  # source snapshots, named by content hash
    features = "features"  # validated training sets and holdouts, by features version
    feedback = "feedback"  # labelled production rows, by content hash
    adaptation = "adaptation"  # drifted windows a retraining weights toward
    acknowledged_drifts = "drift/acknowledged"  # drifts a weighted retraining could not fix, by champion
    inference_log = "inference_log"  # every scored row, as the endpoint wrote it
    shadow_log = "shadow_log"  # a shadow model's answers, beside the inference log
    drift_reports = "reports/drift"
    evaluation_reports = "reports/evaluation"
    batch_predictions = "batch_predictions"
    audit = "audit"  # one record per deployment decision
    aliases = "aliases"  # one record per move of champion or challenger
    checkpoints = "checkpoints"  # a torch training's last epoch, by what decides its weights; gone once registered


def store_key(pipeline: str, prefix: StorePrefix, *parts: str) -> str:
    """``<pipeline>/<prefix>[/<part>...]``: where one pipeline keeps files of one kind in the artifact store."""
    return "/".join((pipeline, prefix, *parts))


class Strategy(StrEnum):
    """How ``deployed_endpoint`` rolls a gated challenger out (the spec's ``deployment.strategy``)."""

    replace = "replace"  # swap at once
    canary = "canary"  # a share of traffic, promoted or rolled back on the online comparison
    shadow = "shadow"  # copies of traffic, answers logged, never returned
    ab = "ab"  # a fixed split until a person ends it


STRATEGIES = tuple(strategy.value for strategy in Strategy)  # as the spec's Literal lists them


class DriftStatus(StrEnum):
    """A drift report's verdict, as the drift sensor reads it."""

    not_enough_traffic = "not enough traffic"
    no_drift = "no drift"
    drifted = "drifted"  # importance weights can answer it: a retraining may run
    waiting_for_labels = "drifted, waiting for labels"  # weights cannot answer it: only labels can
    known_drift = "known drift"  # a weighted retraining did not help: acknowledged, waiting for labels
