"""What each asset hands to the next: small, picklable records that point at the data, never the data."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from mlops_assets.naming import Strategy


@dataclass(frozen=True)
class RawSnapshot:
    key: str  # artifact-store key of the immutable parquet snapshot
    content_hash: str
    rows: int


@dataclass(frozen=True)
class FeedbackSet:
    key: str  # artifact-store key of the labelled production rows, named by their content hash
    content_hash: str
    rows: int
    quarantine_key: str | None  # label rows set aside, with the reason


@dataclass(frozen=True)
class FeatureSet:
    version: str  # hash of what trains and judges (rows, weights, holdouts) and of the spec
    train_key: str
    holdout_key: str
    quarantine_key: str | None
    dataset_hash: str  # the raw snapshot's content hash
    recent_holdout_key: str | None = None  # labelled production rows never trained on
    reference_key: str = ""  # inputs the version is fitted for: its drift reference once it serves
    feedback_hash: str | None = None
    adaptation: dict | None = None  # the drift the importance weights answer, and their sample size
    rows_by_origin: dict = field(default_factory=dict)  # training rows from the source and from production
    rows_hash: str = ""  # the training rows and their weights, with the spec: equal hashes train a copy
    concept_change: dict | None = (
        None  # the concept test on the production rows, and whether the source was weighed down
    )
    views: dict = field(default_factory=dict)  # feature view name -> the offline snapshot hash joined as of each row


@dataclass(frozen=True)
class TrainedModel:
    name: str
    version: str
    run_id: str
    features: FeatureSet
    trigger: str


@dataclass(frozen=True)
class EvaluationReport:
    model: TrainedModel
    metrics: dict[str, float]
    champion_version: str | None
    champion_metrics: dict[str, float] | None
    gate_passed: bool
    gate_reasons: list[str] = field(default_factory=list)
    holdouts: dict = field(default_factory=dict)  # per holdout (fixed, weighted, recent): rows, metrics, gains
    fairness: list = field(default_factory=list)  # per sensitive column and figure: value and per-group rates


@dataclass(frozen=True)
class EndpointState:
    url: str
    model_version: str
    log_key: str  # artifact-store prefix of the inference log
    reference_key: str  # inputs the served model is fitted for: the drift reference
    previous_version: str | None
    approved_by: str


@dataclass(frozen=True)
class TrainingRequest:
    """Everything the training process needs; plain values so it crosses a process or pod boundary."""

    spec_path: str
    train_uri: str
    tracking_uri: str
    experiment_id: str
    tags: dict[str, str]
    checkpoint_uri: str | None = None  # where a torch training keeps its last epoch, to resume after a restart


@dataclass(frozen=True)
class TrainingResult:
    """What the training process reports back; it crosses the process or pod boundary as a Pipes custom message."""

    version: str
    run_id: str
    train_metrics: dict[str, float]
    params: dict[str, Any]
    device: str
    seconds: float
    rows: int
    weighted: bool  # trained with sample weights (training window, importance weights)
    precision: str | None = None  # a torch training's forward pass: fp32, bf16 or fp16
    resumed_from_epoch: int | None = None  # the checkpoint's epoch a restarted torch training continued after

    def to_message(self) -> dict[str, Any]:
        """The Pipes custom message the training process reports."""
        return asdict(self)

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> TrainingResult:
        """The result from the Pipes custom message ``to_message`` wrote: read once, where it arrives."""
        return cls(**message)


@dataclass(frozen=True)
class RegisteredModel:
    """One version of a registered model and the tags that trace it."""

    name: str
    version: str
    run_id: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Rollout:
    """What the deployment hands the endpoint to roll a challenger out (``serving.routing`` routes by it).

    ``canary``: ``share`` of requests go to the challenger (sticky by key when a key is sent); ``ab``: the same
    split, for a person to decide; ``shadow``: the challenger scores copies, never answers."""

    mode: Strategy  # any strategy but replace (``serving.routing.MODES``)
    challenger_version: str
    share: float = 0.1
    sticky_key: str | None = None


@dataclass(frozen=True)
class RunningRollout:
    """The rollout an endpoint runs, as its ``/admin/status`` shows it: the ``Rollout`` it was given, and when."""

    mode: Strategy
    challenger_version: str
    share: float
    sticky_key: str | None
    started_at: str  # ISO 8601, UTC, from the endpoint's clock

    @property
    def started(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.started_at)

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> RunningRollout:
        return cls(
            Strategy(document["mode"]),
            document["challenger_version"],
            document["share"],
            document.get("sticky_key"),
            document["started_at"],
        )


@dataclass(frozen=True)
class EndpointStatus:
    """What the endpoint's admin routes answer (``/admin/status``, ``/admin/rollout``, ``/admin/rollout/end``),
    parsed once where the answer arrives (the deployer): the served version and how it scores, the running rollout,
    each arm's counters since it started, and the endpoint process's request and log counters.

    >>> status = EndpointStatus.from_json({"model_version": "2", "rollout": None, "arms": {}})
    >>> (status.model_version, status.rollout, status.requests)
    ('2', None, None)
    """

    model_version: str | None
    fast_path_check: str | None = None  # why the compiled path is or is not used
    rollout: RunningRollout | None = None
    arms: dict[str, dict[str, int]] = field(default_factory=dict)  # champion, challenger: requests, rows, errors...
    challenger_fast_path_check: str | None = None
    requests: dict[str, Any] | None = None  # scoring requests accepted and rejected; None where it counts none
    log: dict[str, Any] | None = None  # the inference log's rows written, dead-lettered and dropped
    shadow_log: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> EndpointStatus:
        """The status from the endpoint's JSON answer; fields it does not show keep their defaults."""
        rollout = document.get("rollout")
        return cls(
            model_version=document.get("model_version"),
            fast_path_check=document.get("fast_path_check"),
            rollout=RunningRollout.from_json(rollout) if rollout else None,
            arms=document.get("arms") or {},
            challenger_fast_path_check=document.get("challenger_fast_path_check"),
            requests=document.get("requests"),
            log=document.get("log"),
            shadow_log=document.get("shadow_log"),
        )


@dataclass(frozen=True, kw_only=True)
class DriftReportMetadata:
    """What a ``drift_report`` materialization says of its window and verdict, under these field names as metadata
    keys: the asset writes it (``to_metadata``), the drift and performance sensors read it back (``from_metadata``),
    so the keys are written once, here. The report's figures (counts, plots, online metric) are beside it.

    >>> DriftReportMetadata.from_metadata({"status": "drifted", "window_end": "rows 0-200"}).verdict
    'drifted'
    """

    drift_report_id: str | None = None  # the run that made the report
    status: str  # a ``naming.DriftStatus``; "" on a materialization that is no drift report's
    verdict: str
    model_version: str | None = None  # the version judged
    window_rows: int | None = None
    window_end: str | None = None  # "rows a-b" (``naming.WINDOW_PREFIX``) for a traffic window, else how it ended
    drift_reference: str | None = None  # artifact-store key of what the window was compared with
    adaptation_window: str | None = None  # artifact-store key of the drifted window a retraining may weight toward

    def to_metadata(self) -> dict[str, Any]:
        """The entries of the materialization's metadata; an absent field is left out."""
        return {name: value for name, value in asdict(self).items() if value is not None}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> DriftReportMetadata:
        """The record from a materialization's metadata (Dagster's ``MetadataValue``s, or plain values)."""
        plain = {name: getattr(value, "value", value) for name, value in metadata.items()}
        status = str(plain.get("status", ""))
        known = {f.name for f in fields(cls)} - {"status", "verdict"}
        return cls(
            status=status,
            verdict=plain.get("verdict", status),
            **{name: plain[name] for name in known if name in plain},
        )
