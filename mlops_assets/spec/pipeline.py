"""The pipeline spec: one YAML file describes a model's lifecycle; these models are its only definition.

Field descriptions here are the spec reference: ``mlops-assets spec-reference`` renders them into
docs/spec-reference.md, and a test keeps the two equal.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import ConfigDict, Field, ValidationError, model_validator

from mlops_assets import grammar
from mlops_assets.spec.base import SpecModel, Task
from mlops_assets.spec.data import Features, Schema, Source, Split
from mlops_assets.spec.operations import Alert, Batch, Deployment, Monitoring, Retraining
from mlops_assets.spec.training import Evaluation, Model, Training
from mlops_assets.spec.vocabulary import CLASSIFICATION_LIMITS, METRIC_TASKS, REGRESSION_LIMITS, default_metrics


class PipelineSpec(SpecModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Pipeline name: asset group and key prefix.")
    description: str = Field(default="", description="Free text shown in the Dagster UI.")
    task: Task = Field(description="binary, multiclass or regression.")
    target: str = Field(description="Column to predict; must be in the schema.")
    id_column: str | None = Field(default=None, description="Row id column (never a feature).")
    source: Source = Field(description="Where the training data comes from.")
    schema_: Schema = Field(alias="schema", description="Columns, types and checks (pandera).")
    split: Split = Field(default_factory=Split, description="Train/holdout split.")
    features: Features = Field(default_factory=Features, description="Feature engineering.")
    model: Model = Field(description="What to train.")
    evaluation: Evaluation = Field(default_factory=Evaluation, description="Metrics and the deploy gate.")
    deployment: Deployment = Field(default_factory=Deployment, description="How the model is rolled out.")
    monitoring: Monitoring = Field(default_factory=Monitoring, description="Drift detection on traffic.")
    batch: Batch | None = Field(
        default=None, description="A dataset scored by the `batch_predictions` asset (no asset when absent)."
    )
    retraining: Retraining = Field(default_factory=Retraining, description="When the sensors retrain by themselves.")
    training: Training = Field(
        default_factory=Training, description="What a retraining learns from: production feedback, drift weights."
    )
    alerts: list[Alert] = Field(
        default_factory=list,
        description="Where drift, a refused retraining, a failed gate, a rollback or a failed run is announced, "
        "beside the Dagster log (always).",
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _consistent(self) -> PipelineSpec:
        columns = self.schema_.columns
        if self.target not in columns:
            raise field_error(("target",), f"target {self.target!r} is not a schema column", self.target)
        if self.id_column is not None and self.id_column not in columns:
            raise field_error(("id_column",), f"id_column {self.id_column!r} is not a schema column", self.id_column)
        labels = self.source.labels
        if labels is not None and labels.id_column not in columns:
            raise field_error(
                ("source", "labels", "id_column"),
                f"source.labels.id_column {labels.id_column!r} is not a schema column",
                labels.id_column,
            )
        if labels is not None and labels.id_column != self.id_column:
            raise field_error(
                ("source", "labels", "id_column"),
                f"source.labels.id_column {labels.id_column!r} must be the spec's id_column ({self.id_column!r}): "
                "the endpoint logs that id, and labels that arrive later join served rows by it",
                labels.id_column,
            )
        known = set(columns) - self.non_features
        for name, source in self.features.derived.items():
            try:
                missing = grammar.parse(source)[1] - known
            except ValueError as exc:
                raise field_error(("features", "derived", name), str(exc), source) from None
            if missing:
                raise field_error(("features", "derived", name), f"{sorted(missing)} are not feature columns", source)
            known.add(name)
        for i, transform in enumerate(self.features.transforms or []):
            unknown = [c for c in transform.columns if c not in known or c in self.non_features]
            if unknown:
                raise field_error(
                    ("features", "transforms", i, "columns"), f"{unknown} are not feature columns", transform.columns
                )
        for column in self.feature_columns:
            if column in columns and columns[column].dtype == "str" and column not in self.encoded_columns:
                raise field_error(
                    ("schema", "columns", column, "dtype"),
                    f"feature {column!r} is a string: give it an onehot or ordinal transform",
                    "str",
                )
        unknown = sorted(set(self.monitoring.features) - set(self.input_columns))
        if unknown:
            raise field_error(
                ("monitoring", "features"),
                f"{unknown} are not input columns; allowed: {self.input_columns}",
                self.monitoring.features,
            )
        if self.monitoring.performance is not None and self.id_column is None:
            raise field_error(
                ("monitoring", "performance"),
                "monitoring.performance needs id_column, to join labels to logged predictions",
                self.monitoring.performance.metric,
            )
        allowed = METRICS_BY_TASK[self.task]
        performance = [self.monitoring.performance.metric] if self.monitoring.performance else []
        for field, names in (
            ("monitoring.performance.metric", performance),
            ("evaluation.metrics", self.metrics),
            ("evaluation.gate.thresholds", list(self.evaluation.gate.thresholds)),
            ("evaluation.gate.min_gain", list(self.evaluation.gate.min_gain)),
        ):
            bad = [m for m in names if m not in allowed]
            if bad:
                raise field_error(
                    tuple(field.split(".")), f"{bad} not available for task {self.task!r}; allowed: {allowed}", bad
                )
        self._check_groups()
        return self

    def _check_groups(self) -> None:
        """Slice and sensitive columns are schema columns with few values; fairness limits fit the task."""
        columns, fairness = self.schema_.columns, self.evaluation.fairness
        groupable = [c for c, col in columns.items() if col.dtype != "float" and c not in (self.target, self.id_column)]
        for loc, names in (
            (("evaluation", "slices"), self.evaluation.slices),
            (("evaluation", "fairness", "sensitive"), fairness.sensitive),
        ):
            for i, column in enumerate(names):
                if column not in groupable:
                    why = (
                        "not a schema column"
                        if column not in columns
                        else {self.target: "the target", self.id_column: "the id column"}.get(
                            column, "a float column (a group per value)"
                        )
                    )
                    raise field_error(
                        (*loc, i),
                        f"{column!r} is {why}; allowed: schema columns of dtype str, int or bool other than the "
                        f"target and the id column: {groupable}",
                        column,
                    )
        limits = list(fairness.limits.declared())
        fitting = REGRESSION_LIMITS if self.task == "regression" else CLASSIFICATION_LIMITS
        unfit = [name for name in limits if name not in fitting]
        if unfit:
            raise field_error(
                ("evaluation", "fairness", "limits"),
                f"{unfit} not available for task {self.task!r}; allowed: {list(fitting)}",
                unfit,
            )
        if limits and not fairness.sensitive:
            raise field_error(
                ("evaluation", "fairness", "sensitive"),
                f"limits {limits} need sensitive columns whose groups they compare",
                fairness.sensitive,
            )

    @property
    def non_features(self) -> set[str]:
        keys = [c for ref in self.features.views for c in (ref.entity_column, ref.time_column) if c is not None]
        return {self.target, *([self.id_column] if self.id_column else []), *self.features.exclude, *keys}

    @property
    def feature_columns(self) -> list[str]:
        """Input columns of the model in a fixed order: schema columns, then derived ones."""
        base = [c for c in self.schema_.columns if c not in self.non_features]
        return base + list(self.features.derived)

    @property
    def input_columns(self) -> list[str]:
        """Columns a scoring request must carry (the schema's features, before derivation)."""
        return [c for c in self.schema_.columns if c not in self.non_features]

    @property
    def encoded_columns(self) -> set[str]:
        if self.features.transforms is None:
            return {c for c, col in self.schema_.columns.items() if col.dtype == "str"}
        return {c for t in self.features.transforms if t.kind in ("onehot", "ordinal") for c in t.columns}

    @property
    def metrics(self) -> list[str]:
        return self.evaluation.metrics or default_metrics(self.task)

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]

    @property
    def online_confidence(self) -> float:
        """Level of the intervals on online metrics: the performance check's, else 95%."""
        return self.monitoring.performance.confidence if self.monitoring.performance else 0.95

    @property
    def spec_hash(self) -> str:
        """What the spec declares, not what this code's defaults add to it: a field a later release adds at its
        default leaves every older version's hash, so `reproduce` still recognises its spec. A default that
        changes is a code change, which the version's git sha records."""
        canonical = json.dumps(self.model_dump(mode="json", by_alias=True, exclude_defaults=True), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def field_error(loc: tuple[str | int, ...], message: str, value: object) -> ValidationError:
    """A cross-field problem located at ``loc``, so that ``load_spec`` and Dagster's ``dg check defs`` name
    the field: a ``ValueError`` raised by a model validator has no location.

    Only ``value_error`` with its ``error`` survives Dagster rebuilding the error to add the defs.yaml line.
    """
    error = {"type": "value_error", "loc": loc, "input": value, "ctx": {"error": ValueError(message)}}
    return ValidationError.from_exception_data("PipelineSpec", [error])


METRICS_BY_TASK = {task: [m for m, tasks in METRIC_TASKS.items() if task in tasks] for task in Task.__args__}
