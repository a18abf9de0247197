"""The pipeline spec: one YAML file describes a model's lifecycle; these models are its only definition.

Field descriptions here are the spec reference: ``mlops-assets spec-reference`` renders them into the
README, and a test keeps the two equal.
"""

from __future__ import annotations

import glob
import hashlib
import json
import types
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mlops_assets.errors import SpecError
from mlops_assets.estimators import locate
from mlops_assets.expressions import Expression
from mlops_assets.metrics import METRICS, default_metrics
from mlops_assets.safe_yaml import load_yaml

Task = Literal["binary", "multiclass", "regression"]
Dtype = Literal["float", "int", "str", "bool"]


class SpecModel(BaseModel):
    """Base of every spec section: unknown keys are errors (``extra="forbid"``), reported together with
    every other problem of the spec and with the allowed keys (see ``_describe_all``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _existing_files(pattern: str, info: ValidationInfo) -> str:
    base = Path((info.context or {}).get("base_dir", "."))
    if not glob.glob(str(base / pattern)):
        raise ValueError(f"no file matches {pattern!r} (relative to {base})")
    return pattern


class LabelsSource(SpecModel):
    path: str = Field(description="CSV/parquet file, glob or folder of label batches, relative to the spec.")
    id_column: str = Field(description="Column present in both the data and the labels, used to join them.")

    @field_validator("path")
    @classmethod
    def _location_exists(cls, value: str, info: ValidationInfo) -> str:
        """Label batches may not have arrived yet, but the folder they land in must exist."""
        base = Path((info.context or {}).get("base_dir", "."))
        location = base / value
        if glob.has_magic(value):
            location = location.parent
        if not location.exists():
            raise ValueError(f"{value!r} does not exist (relative to {base})")
        return value


class Source(SpecModel):
    path: str = Field(description="CSV or parquet file or glob, relative to the spec file.")
    labels: LabelsSource | None = Field(
        default=None, description="Optional label batches joined to the data by an id column."
    )

    _validate_path = field_validator("path")(_existing_files)


class Column(SpecModel):
    dtype: Dtype = Field(description="float, int, str or bool; values are coerced, failures quarantined.")
    nullable: bool = Field(default=False, description="Whether missing values are allowed.")
    ge: float | None = Field(default=None, description="Minimum allowed value (inclusive).")
    gt: float | None = Field(default=None, description="Minimum allowed value (exclusive).")
    le: float | None = Field(default=None, description="Maximum allowed value (inclusive).")
    lt: float | None = Field(default=None, description="Maximum allowed value (exclusive).")
    isin: list[Any] | None = Field(default=None, description="Allowed values.")
    notin: list[Any] | None = Field(default=None, description="Forbidden values.")
    str_matches: str | None = Field(default=None, description="Regular expression every value must match.")


class Schema(SpecModel):
    columns: dict[str, Column] = Field(description="Every expected column, the target included.")
    unknown_columns: Literal["reject", "drop", "keep"] = Field(
        default="reject", description="What to do with columns the schema does not list."
    )
    max_quarantine_share: float = Field(
        default=0.05, ge=0, le=1, description="Largest share of rows that may fail validation."
    )

    @field_validator("columns")
    @classmethod
    def _not_empty(cls, value: dict[str, Column]) -> dict[str, Column]:
        if not value:
            raise ValueError("list at least the target and one feature column")
        return value


class Split(SpecModel):
    holdout: float = Field(default=0.2, gt=0, lt=1, description="Share of rows kept out of training.")
    seed: int = Field(default=42, description="Seed of the deterministic split.")


class Transform(SpecModel):
    kind: Literal["standard", "minmax", "onehot", "ordinal"] = Field(
        description="standard/minmax scale numbers; onehot/ordinal encode categories."
    )
    columns: list[str] = Field(min_length=1, description="Columns (schema or derived) the transform reads.")
    categories: dict[str, list[Any]] | None = Field(
        default=None, description="ordinal only: the ordered categories per column (default: sorted)."
    )


class Features(SpecModel):
    derived: dict[str, str] = Field(
        default_factory=dict,
        description="New numeric columns by expression over other columns, e.g. `ratio: a / b`.",
    )
    transforms: list[Transform] | None = Field(
        default=None,
        description="Transforms; columns not named pass through. Default: standard-scale numbers, one-hot strings.",
    )
    exclude: list[str] = Field(
        default_factory=list, description="Schema columns that are not features (ids, timestamps)."
    )


class TorchModel(SpecModel):
    hidden_layers: list[int] = Field(default=[64, 32], description="Width of each hidden layer of the MLP.")
    epochs: int = Field(default=30, ge=1, description="Passes over the training set.")
    batch_size: int = Field(default=64, ge=1, description="Rows per gradient step.")
    learning_rate: float = Field(default=1e-3, gt=0, description="Adam learning rate.")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="auto picks CUDA if present.")
    seed: int = Field(default=0, description="Seed for weights and batch order.")


class Model(SpecModel):
    estimator: str | None = Field(
        default=None,
        description="Import path of an estimator class (with fit and predict) from scikit-learn, e.g. "
        "`sklearn.linear_model.Ridge`; classes of other modules only once their prefixes are listed, "
        "comma-separated, in the environment variable MLOPS_ALLOWED_ESTIMATOR_MODULES (e.g. `xgboost,lightgbm`).",
    )
    params: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the estimator.")
    torch: TorchModel | None = Field(default=None, description="Train a torch MLP instead of an estimator.")

    @model_validator(mode="after")
    def _one_kind(self) -> Model:
        if (self.estimator is None) == (self.torch is None):
            raise ValueError("set exactly one of 'estimator' or 'torch'")
        if self.torch is not None and self.params:
            raise ValueError("'params' belongs to 'estimator'; torch settings go under 'torch'")
        return self

    @field_validator("estimator")
    @classmethod
    def _importable(cls, value: str | None) -> str | None:
        if value is not None:
            locate(value)
        return value


class Gate(SpecModel):
    thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="Absolute bound per metric: a minimum where higher is better, else a maximum.",
    )
    min_gain: dict[str, float] = Field(
        default_factory=dict,
        description="Least improvement over the champion per metric, in its better direction "
        "(negative allows a small regression).",
    )


class Evaluation(SpecModel):
    metrics: list[str] | None = Field(default=None, description="Metrics to report (default per task).")
    gate: Gate = Field(default_factory=Gate, description="Conditions the challenger must meet to deploy.")


class RolloutSettings(SpecModel):
    share: float = Field(default=0.1, gt=0, lt=1, description="canary/ab: share of requests the challenger answers.")
    sticky_key: str | None = Field(
        default=None, description="Request column that keeps a caller on one arm (default: id_column)."
    )
    min_requests: int = Field(default=200, ge=1, description="canary: challenger requests before the verdict.")
    timeout_minutes: float = Field(
        default=30, gt=0, description="canary: roll back when the challenger has not had enough requests by then."
    )
    max_error_rate_increase: float = Field(
        default=0.01, ge=0, description="canary: most extra failed-request share the challenger may add."
    )
    min_gain: float = Field(
        default=0.0,
        description="canary with labels: least gain over the champion's online primary metric, in its better "
        "direction, that the confidence interval of the challenger's gain must reach (negative tolerates a small "
        "regression); with 0 a challenger is rolled back only when confidently worse.",
    )
    min_labelled_rows: int = Field(
        default=50,
        ge=1,
        description="canary with labels: labelled predictions each arm needs before the metrics are compared; "
        "at the timeout with fewer, the verdict rests on error rates and says so.",
    )


class Deployment(SpecModel):
    strategy: Literal["replace", "canary", "shadow", "ab"] = Field(
        default="replace",
        description="replace: swap to the gated challenger; canary: a share first, then promote or roll back "
        "automatically; shadow: the challenger scores copies; ab: a fixed split for a person to decide.",
    )
    rollout: RolloutSettings = Field(
        default_factory=RolloutSettings, description="Settings of canary, shadow and ab rollouts."
    )
    host: str = Field(default="127.0.0.1", description="Interface the local endpoint listens on.")
    port: int = Field(default=0, ge=0, le=65535, description="Port of the local endpoint (0: any free port).")
    on_invalid: Literal["reject", "flag"] = Field(
        default="reject",
        description="A scoring row that breaks the schema (a type, a bound, an unseen category, NaN or infinity "
        "where not nullable): reject answers 400 naming the row, column and rule; flag scores it, marks it invalid "
        "in the inference log and counts it.",
    )
    fast_path: bool = Field(
        default=True,
        description="Score small requests with the model compiled to numpy (linear models, trees, forests, "
        "gradient boosting) when, at load time, it reproduces the model on the version's holdout.",
    )
    fast_path_tolerance: float = Field(
        default=1e-9,
        gt=0,
        description="Largest difference of probabilities (regression: predictions) the fast path may show on "
        "the holdout; labels must be identical.",
    )
    scoring_token_env: str | None = Field(
        default=None,
        description="Environment variable holding a bearer token that /invocations then requires "
        "(default: scoring is open; admin routes always need MLOPS_ADMIN_TOKEN when it is set).",
    )


class Thresholds(SpecModel):
    psi: float | None = Field(default=None, gt=0, description="PSI threshold for this feature.")
    wasserstein: float | None = Field(default=None, gt=0, description="Normalised Wasserstein threshold.")
    js: float | None = Field(default=None, gt=0, description="Jensen-Shannon distance threshold (categories).")


class Performance(SpecModel):
    metric: str = Field(description="Online metric computed on logged predictions joined to labels.")
    floor: float = Field(
        description="Retrain when the metric's confidence interval lies wholly below this "
        "(above it, for lower-is-better metrics)."
    )
    window: int = Field(default=200, ge=10, description="Labelled predictions per evaluation window.")
    confidence: float = Field(default=0.95, gt=0, lt=1, description="Level of the confidence interval.")


class Monitoring(SpecModel):
    window: int = Field(default=500, ge=1, description="Newest logged requests compared to the reference.")
    min_rows: int = Field(default=50, ge=1, description="Fewer logged requests than this: no verdict yet.")
    bins: int = Field(default=10, ge=2, le=100, description="Quantile bins fixed on the reference (PSI).")
    psi_threshold: float = Field(default=0.2, gt=0, description="PSI above which a numeric feature has drifted.")
    wasserstein_threshold: float = Field(
        default=0.1, gt=0, description="Wasserstein distance over the reference's std above which it has drifted."
    )
    js_threshold: float = Field(
        default=0.1,
        gt=0,
        description="Jensen-Shannon distance above which a categorical feature, or a numeric feature's missing "
        "share, has drifted.",
    )
    alpha: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="Level of the corrected KS / chi-squared tests that must confirm an effect size.",
    )
    correction: Literal["bonferroni", "bh"] = Field(
        default="bonferroni", description="Multiple-testing correction: bonferroni or bh (Benjamini-Hochberg)."
    )
    features: dict[str, Thresholds] = Field(
        default_factory=dict, description="Per-feature threshold overrides, by feature name."
    )
    persistence: int = Field(
        default=1, ge=1, description="Consecutive drifted windows (one report each) before retraining."
    )
    max_rejected_share: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Largest share of scoring requests the endpoint may reject (400: a missing column, a bad "
        "value) between two drift reports; rejected requests are never logged, so this is how a feature that "
        "stops arriving is seen.",
    )
    performance: Performance | None = Field(
        default=None, description="Online performance check once labels can be joined to predictions."
    )


class Retraining(SpecModel):
    on_drift: bool = Field(default=True, description="Retrain when the drift report says drift.")
    on_new_labels: bool = Field(default=True, description="Retrain when a new label batch lands.")
    cooldown_minutes: float = Field(default=60, ge=0, description="Least time between two automatic retrainings.")
    daily_budget: int = Field(default=3, ge=0, description="Most automatic retrainings per UTC day.")
    sensors: Literal["running", "stopped"] = Field(
        default="running", description="Initial status of the pipeline's sensors in Dagster."
    )
    interval_seconds: int = Field(default=30, ge=5, description="Least time between two sensor ticks.")


class TrainingWindow(SpecModel):
    policy: Literal["all", "newest", "max_age", "half_life"] = Field(
        default="all",
        description="Which labelled production rows train, beside the source: all; the newest `rows`; those "
        "logged within `days`; or all, weighted by recency with `half_life_days`. Ages count from the newest "
        "labelled production row, so the same data always gives the same training set.",
    )
    rows: int | None = Field(
        default=None, ge=1, description="newest: rows kept, production rows first (source rows count as oldest)."
    )
    days: float | None = Field(default=None, gt=0, description="max_age: production rows logged within this many days.")
    half_life_days: float | None = Field(
        default=None, gt=0, description="half_life: a production row this old weighs half as much as the newest."
    )
    source_weight: float = Field(
        default=1.0,
        ge=0,
        description="Weight of the declared source's rows (0 drops them once production rows can train alone): "
        "lower it when production has taught a concept the source no longer holds.",
    )

    @model_validator(mode="after")
    def _policy_has_its_setting(self) -> TrainingWindow:
        needed = {"newest": "rows", "max_age": "days", "half_life": "half_life_days"}.get(self.policy)
        if needed is not None and getattr(self, needed) is None:
            raise ValueError(f"policy {self.policy!r} needs {needed!r}")
        return self


class RecentHoldout(SpecModel):
    rows: int = Field(
        default=500,
        ge=1,
        description="Newest labelled production rows on the holdout side of the id split (never trained on) that "
        "judge challenger and champion on today's data.",
    )
    min_rows: int = Field(
        default=100,
        ge=1,
        description="From this many rows the recent holdout decides the gate; fewer are reported, not decisive.",
    )
    confidence: float = Field(default=0.95, gt=0, lt=1, description="Level of the interval on the recent gain.")


class Adaptation(SpecModel):
    enabled: bool = Field(
        default=True,
        description="Answer drift without labels by importance weights (covariate-shift adaptation); off: wait "
        "for labels.",
    )
    max_weight: float = Field(default=20.0, gt=1, description="Largest importance weight, as a multiple of the mean.")
    min_effective_share: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="Least effective sample size of the weighted training rows, as a share of them; below it "
        "weighting cannot help and the loop waits for labels. Must exceed 1 / max_weight: capped weights of mean "
        "1 never fall below that share.",
    )

    @model_validator(mode="after")
    def _share_can_fail(self) -> Adaptation:
        if self.min_effective_share <= 1 / self.max_weight:
            raise ValueError(
                f"min_effective_share {self.min_effective_share} must exceed 1 / max_weight "
                f"({1 / self.max_weight:.3g}): weights capped at {self.max_weight} never give a smaller share"
            )
        return self


class Training(SpecModel):
    window: TrainingWindow = Field(
        default_factory=TrainingWindow, description="Which labelled production rows train, and their weights."
    )
    recent_holdout: RecentHoldout = Field(
        default_factory=RecentHoldout, description="Labelled production rows that judge the gate on today's data."
    )
    adaptation: Adaptation = Field(default_factory=Adaptation, description="Drift without labels.")


class Batch(SpecModel):
    path: str = Field(description="CSV or parquet file or glob to score with the champion, relative to the spec.")
    batch_rows: int = Field(default=65_536, ge=1, description="Rows scored at a time: what bounds memory.")

    _validate_path = field_validator("path")(_existing_files)


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

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _consistent(self) -> PipelineSpec:
        columns = self.schema_.columns
        if self.target not in columns:
            raise ValueError(f"target {self.target!r} is not a schema column")
        if self.id_column is not None and self.id_column not in columns:
            raise ValueError(f"id_column {self.id_column!r} is not a schema column")
        labels = self.source.labels
        if labels is not None and labels.id_column not in columns:
            raise ValueError(f"source.labels.id_column {labels.id_column!r} is not a schema column")
        if labels is not None and labels.id_column != self.id_column:
            raise ValueError(
                f"source.labels.id_column {labels.id_column!r} must be the spec's id_column ({self.id_column!r}): "
                "the endpoint logs that id, and labels that arrive later join served rows by it"
            )
        known = set(columns) - self.non_features
        for name, source in self.features.derived.items():
            try:
                missing = Expression.parse(source).columns - known
            except ValueError as exc:
                raise ValueError(f"features.derived.{name}: {exc}") from None
            if missing:
                raise ValueError(f"features.derived.{name}: {sorted(missing)} are not feature columns")
            known.add(name)
        for i, transform in enumerate(self.features.transforms or []):
            unknown = [c for c in transform.columns if c not in known or c in self.non_features]
            if unknown:
                raise ValueError(f"features.transforms.{i}.columns: {unknown} are not feature columns")
        for column in self.feature_columns:
            if column in columns and columns[column].dtype == "str" and column not in self.encoded_columns:
                raise ValueError(f"feature {column!r} is a string: give it an onehot or ordinal transform")
        unknown = sorted(set(self.monitoring.features) - set(self.input_columns))
        if unknown:
            raise ValueError(f"monitoring.features: {unknown} are not input columns; allowed: {self.input_columns}")
        if self.monitoring.performance is not None and self.id_column is None:
            raise ValueError("monitoring.performance needs id_column, to join labels to logged predictions")
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
                raise ValueError(f"{field}: {bad} not available for task {self.task!r}; allowed: {allowed}")
        return self

    @property
    def non_features(self) -> set[str]:
        return {self.target, *([self.id_column] if self.id_column else []), *self.features.exclude}

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
        canonical = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


METRICS_BY_TASK = {task: [m for m, info in METRICS.items() if task in info.tasks] for task in Task.__args__}


def load_spec(path: str | Path) -> PipelineSpec:
    """Read and validate one spec; its relative paths resolve against its folder."""
    path = Path(path)
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise SpecError(str(path), ["the top level must be a mapping of fields"])
    try:
        spec = PipelineSpec.model_validate(raw, context={"base_dir": path.parent})
    except ValidationError as exc:
        raise SpecError(str(path), _describe_all(exc.errors())) from None
    return spec


def read_specs(folder: str | Path) -> tuple[list[tuple[PipelineSpec, Path]], list[SpecError]]:
    """Every good ``*.yaml``/``*.yml`` spec in ``folder`` with its resolved path, and a ``SpecError`` per
    file that is not: the code location serves the good ones and shows the others, ``validate`` refuses all.
    Files that declare the same pipeline name are all refused: picking one could serve the wrong model."""
    loaded, problems = [], []
    for path in sorted(Path(folder).glob("*.y*ml")):
        try:
            loaded.append((load_spec(path), path.resolve()))
        except SpecError as exc:
            problems.append(exc)
    files_by_name = defaultdict(list)
    for spec, path in loaded:
        files_by_name[spec.name].append(path.name)
    specs = []
    for spec, path in loaded:
        others = [name for name in files_by_name[spec.name] if name != path.name]
        if others:
            problems.append(SpecError(str(path), [f"name: pipeline {spec.name!r} is also declared by {others}"]))
        else:
            specs.append((spec, path))
    return specs, problems


def load_specs(folder: str | Path) -> list[tuple[PipelineSpec, Path]]:
    """Every spec in ``folder`` with its resolved path, or one ``SpecError`` with all problems of all files."""
    specs, problems = read_specs(folder)
    if problems:
        raise SpecError(str(folder), [str(p) for p in problems])
    return specs


def _describe_all(errors: list[dict[str, Any]]) -> list[str]:
    """One line per problem; the unknown keys of one section share a line that lists the allowed keys."""
    lines, unknown = [], defaultdict(list)
    for error in errors:
        if error["type"] == "extra_forbidden":
            unknown[tuple(error["loc"][:-1])].append(error["loc"][-1])
        else:
            lines.append(_describe(error))
    for loc, keys in unknown.items():
        allowed = ", ".join(_allowed_keys(loc))
        lines.append(f"{_path(loc)}: unknown field(s) {', '.join(map(repr, keys))}; allowed: {allowed}")
    return lines


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """Keys of the spec section at ``loc``, found by walking the models' annotations from the top."""
    node: Any = PipelineSpec
    for part in loc:
        node = _unwrap_optional(node)
        if isinstance(node, type) and issubclass(node, SpecModel):
            fields = {field.alias or name: field for name, field in node.model_fields.items()}
            node = fields[part].annotation if part in fields else None
        elif get_origin(node) in (list, dict):
            node = get_args(node)[-1]  # ``part`` is an index or a key: on to the item's type
    node = _unwrap_optional(node)
    if isinstance(node, type) and issubclass(node, SpecModel):
        return [field.alias or name for name, field in node.model_fields.items()]
    return []


def _unwrap_optional(annotation: Any) -> Any:
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def _path(loc: tuple[Any, ...]) -> str:
    return ".".join("schema" if part == "schema_" else str(part) for part in loc) or "(top level)"


def _describe(error: dict[str, Any]) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "required field is missing"
    return f"{_path(error['loc'])}: {message}"
