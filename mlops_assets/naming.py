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

# the code location's one report over every pipeline: its asset key, under no pipeline's prefix, and its files at
# the artifact store's root, where no pipeline's folder can be (a pipeline name has no dot)
PORTFOLIO = "portfolio"
PORTFOLIO_MARKDOWN = "portfolio.md"
PORTFOLIO_HTML = "portfolio.html"

# feature views, shared by every pipeline that uses them: the folder of their YAML files beside the specs, their
# asset keys' prefix (``feature_views/<view>``) and their artifact-store folder, at the store's root
FEATURE_VIEWS = "feature_views"
FEATURE_VIEW_TAG = "feature_view."  # a model version's tag per view it joined: ``feature_view.<view>`` -> snapshot hash

# MLflow registry aliases: the version serving, and the newest trained version awaiting its gate
CHAMPION = "champion"
CHALLENGER = "challenger"

# run tags
PIPELINE_TAG = "mlops/pipeline"
RETRAIN_TAG = "mlops/retrain"  # "true" on automatic retrainings: what the cooldown and budget count
# the pipeline an automatic retraining retrains: the run queue admits one such run per value (``local.instance``)
RETRAINING_OF_TAG = "mlops/retraining_of"
OUTCOME_TAG = "mlops/outcome"  # what a deployment decided: "replace: v3 serves", "champion v2 kept, v3 not promoted"
TRIGGER_TAG = "mlops/trigger"  # why a run started; travels into the model version's tags
APPROVER_TAG = "mlops/approved_by"  # an approval given with the run; recorded in the audit trail
ADAPTATION_TAG = "mlops/adapt_to"  # the drifted window (artifact-store key) a retraining weights toward
WINDOW_END_TAG = "mlops/window_end_row"  # a drift report's window: the logged rows that end at this count
WINDOW_PREFIX = "rows "  # how such a window is named in its report ("rows 200-400"), as the drift sensor reads it
MISSING_CATEGORY = "<missing>"  # a null as one more category: the drift statistics, the importance weights

# a model version's provenance: artifacts of its MLflow run, under PROVENANCE_FOLDER
PROVENANCE_FOLDER = "provenance"
SPEC_ARTIFACT = "spec.yaml"  # the spec file exactly as the training read it
REQUIREMENTS_ARTIFACT = "requirements.txt"  # the training environment, `pip freeze` style (name==version, sorted)
PROVENANCE_ARTIFACT = "provenance.json"  # seed, content hashes of the stored parts, quarantined rows


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
    audit = "audit"  # deployment decisions written before the trail (read, never written)
    aliases = "aliases"  # moves of champion or challenger written before the trail (read, never written)
    trail = "trail"  # the audit trail: one hash-chained record per event, named by its sequence number
    checkpoints = "checkpoints"  # a torch training's last epoch, by what decides its weights; gone once registered


def feature_view_key(view: str) -> dg.AssetKey:
    """``feature_views/<view>``: the asset of one feature view, under no pipeline's prefix."""
    import dagster as dg

    return dg.AssetKey([FEATURE_VIEWS, view])


class ViewPrefix(StrEnum):
    """What a feature view keeps in the artifact store, under ``feature_views/<view>/<prefix>/``."""

    offline = "offline"  # the snapshots training sets are joined against, by content hash
    online = "online"  # the newest row per entity, by content hash, and ``current.json`` pointing at the newest


def view_store_key(view: str, prefix: ViewPrefix, *parts: str) -> str:
    """``feature_views/<view>/<prefix>[/<part>...]``: where one view keeps files of one kind in the artifact store."""
    return "/".join((FEATURE_VIEWS, view, prefix, *parts))


def store_key(pipeline: str, prefix: StorePrefix, *parts: str) -> str:
    """``<pipeline>/<prefix>[/<part>...]``: where one pipeline keeps files of one kind in the artifact store."""
    return "/".join((pipeline, prefix, *parts))


class TrailEvent(StrEnum):
    """The kinds of record in a pipeline's audit trail (``governance.audit``)."""

    legacy = "legacy"  # the chain's first record when records from before it exist: their hashes
    trigger = "trigger"  # what started a training run, and whether it trained
    registration = "registration"  # a trained version registered as challenger, with its provenance
    gate = "gate"  # the evaluation gate's verdict on a version
    approval = "approval"  # a person approved a version for promotion
    decision = "decision"  # what deployed_endpoint (or the endpoint supervisor) did, and why
    alias = "alias"  # a move of champion or challenger


class Strategy(StrEnum):
    """How ``deployed_endpoint`` rolls a gated challenger out (the spec's ``deployment.strategy``)."""

    replace = "replace"  # swap at once
    canary = "canary"  # a share of traffic, promoted or rolled back on the online comparison
    shadow = "shadow"  # copies of traffic, answers logged, never returned
    ab = "ab"  # a fixed split until a person ends it


STRATEGIES = tuple(strategy.value for strategy in Strategy)  # as the spec's Literal lists them


class OnInvalid(StrEnum):
    """What the endpoint does with a scoring row that breaks the schema (the spec's ``deployment.on_invalid``)."""

    reject = "reject"  # answer 400 naming the row, column and rule
    flag = "flag"  # score it, mark it invalid in the inference log and count it


ON_INVALID = tuple(choice.value for choice in OnInvalid)  # as the spec's Literal lists them


class DecisionAction(StrEnum):
    """What a decision in the audit trail did (its ``action``): ``deployed_endpoint``'s, or the endpoint
    supervisor's. A version the endpoint would not load is recorded as ``"<action> failed"``."""

    replace = "replace"  # the challenger promoted and served at once
    redeploy = "redeploy"  # the champion served again: nothing promoted
    rollback = "rollback"  # champion moved back to an earlier version, as the run asked (`rollback: true`)
    promoted = "promoted"  # a canary's verdict promoted the challenger
    rolled_back = "rolled back"  # a canary's verdict kept the champion
    shadow_started = "shadow started"  # a shadow rollout left running for a person to decide
    ab_started = "ab started"  # an A/B rollout left running for a person to decide
    awaiting_approval = "awaiting approval"  # a gated challenger waits for a person's approval; nothing moved
    champion_kept = "champion kept"  # nothing promoted: a refused or outdated challenger
    restart = "restart"  # the supervisor started a crashed endpoint again
    restart_failed = "restart failed"  # the supervisor could not start it again


class AlertEvent(StrEnum):
    """What the alerts of a spec (its top-level ``alerts``) fire on."""

    drift = "drift"  # a drift report found drift
    retraining_refused = "retraining_refused"  # a sensor wanted a retraining; the cooldown or budget said no
    gate_failed = "gate_failed"  # a challenger did not pass the evaluation gate
    slo_failed = "slo_failed"  # a serving objective was missed
    skew = "skew"  # training and serving see different features
    schema_break = "schema_break"  # the endpoint rejected more scoring requests than max_rejected_share
    rollback = "rollback"  # champion went back to an earlier version (by a person or a canary)
    run_failed = "run_failed"  # a run of the pipeline's assets failed


ALERT_EVENTS = tuple(event.value for event in AlertEvent)  # as the spec's Literal lists them


class EndpointCheck(StrEnum):
    """Asset checks on ``deployed_endpoint`` that a sensor runs on their own, apart from a deployment."""

    latency_slo = "latency_slo"  # p99 scoring latency over the SLO window vs monitoring.slo.latency_p99_ms
    error_rate_slo = "error_rate_slo"  # server-side failures over the SLO window vs monitoring.slo.max_error_rate
    skew = "skew"  # sampled served features and predictions vs the training transformer and model offline
    schema_break = "schema_break"  # share of scoring requests rejected (400) vs monitoring.max_rejected_share


class DriftStatus(StrEnum):
    """A drift report's verdict, as the drift sensor reads it."""

    not_enough_traffic = "not enough traffic"
    no_drift = "no drift"
    drifted = "drifted"  # importance weights can answer it: a retraining may run
    waiting_for_labels = "drifted, waiting for labels"  # weights cannot answer it: only labels can
    known_drift = "known drift"  # a weighted retraining did not help: acknowledged, waiting for labels
