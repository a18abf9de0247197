"""What each asset hands to the next: small, picklable records that point at the data, never the data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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
