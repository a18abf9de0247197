"""What to train and how a version is judged: the model and where it trains (its Kubernetes resources), the
evaluation gate, and what a retraining learns from (the training window, the recent holdout, importance weights)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    field_validator,
    model_serializer,
    model_validator,
)

from mlops_assets.spec.base import SpecModel
from mlops_assets.spec.estimators import locate, params_problems


class TorchModel(SpecModel):
    hidden_layers: list[int] = Field(default=[64, 32], description="Width of each hidden layer of the MLP.")
    epochs: int = Field(default=30, ge=1, description="Passes over the training set.")
    batch_size: int = Field(default=64, ge=1, description="Rows per gradient step.")
    learning_rate: float = Field(default=1e-3, gt=0, description="Adam learning rate.")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="auto picks CUDA if present.")
    seed: int = Field(default=0, description="Seed for weights and batch order.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        default="auto",
        description="Arithmetic of the forward pass (weights stay fp32): auto picks bf16 on a CUDA device that "
        "has it, else fp16 with loss scaling, and fp32 on the CPU.",
    )


# Kubernetes quantities as a spec writes them ("500m", "2", "4Gi"); the API server accepts more forms than these.
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
# A DNS subdomain: what a Secret may be named.
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SecretName = Annotated[str, StringConstraints(max_length=253, pattern=DNS_SUBDOMAIN)]


class Toleration(SpecModel):
    key: str | None = Field(default=None, description="Taint key tolerated (none with Exists: every taint).")
    operator: Literal["Equal", "Exists"] = Field(
        default="Equal", description="Equal: the taint's value must be `value`; Exists: any value."
    )
    value: str | None = Field(default=None, description="Taint value, with Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect tolerated (none: every effect)."
    )

    @model_validator(mode="after")
    def _exists_has_no_value(self) -> Toleration:
        if self.operator == "Exists" and self.value is not None:
            raise ValueError("a toleration with operator 'Exists' takes no 'value'")
        if self.key is None and self.operator != "Exists":
            raise ValueError("a toleration without 'key' needs operator 'Exists'")
        return self


class Resources(SpecModel):
    gpu: int = Field(default=0, ge=0, description="Whole GPUs (units of `gpu_resource`) the training pod asks for.")
    gpu_resource: str = Field(
        default="nvidia.com/gpu",
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$",
        description="Extended resource the GPUs are counted in, e.g. a MIG profile `nvidia.com/mig-1g.10gb` so "
        "that small trainings share one physical GPU.",
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict,
        description="Node labels the training pod must land on, e.g. `nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3`.",
    )
    cpu: str | None = Field(
        default=None,
        pattern=QUANTITY,
        description="CPU requested by the training pod and by the pipeline's step pods, as a Kubernetes quantity "
        "(`500m`, `2`); none: the cluster's default.",
    )
    memory: str | None = Field(
        default=None,
        pattern=QUANTITY,
        description="Memory requested (and its limit) of the training pod and of the pipeline's step pods, which "
        "read the same training set, as a Kubernetes quantity (`4Gi`); none: the cluster's default.",
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, description="Taints of the nodes the training pod may land on (GPU pools are tainted)."
    )
    image: str | None = Field(
        default=None,
        description="Image of the training pod (default: the Kubernetes trainer's image, e.g. a CUDA build).",
    )
    active_deadline_seconds: int | None = Field(
        default=None, gt=0, description="Kubernetes stops the training pod after this many seconds."
    )
    env_from_secrets: list[SecretName] = Field(
        default_factory=list,
        description="Secrets whose keys become the training pod's environment (envFrom), e.g. the MLflow and "
        "object-store credentials: named here, never inlined in the spec.",
    )


class Model(SpecModel):
    estimator: str | None = Field(
        default=None,
        description="Import path of an estimator class (with fit and predict) from scikit-learn, e.g. "
        "`sklearn.linear_model.Ridge`; classes of other modules only once their prefixes are listed, "
        "comma-separated, in the environment variable MLOPS_ALLOWED_ESTIMATOR_MODULES (e.g. `xgboost,lightgbm`).",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        validate_default=True,  # an estimator with a required parameter is refused when params are left out
        description="Keyword arguments of the estimator: names it accepts, values it allows (checked by "
        "`mlops-assets validate`).",
    )
    torch: TorchModel | None = Field(default=None, description="Train a torch MLP instead of an estimator.")
    resources: Resources = Field(
        default_factory=Resources,
        description="Where the training runs on Kubernetes (the Kubernetes trainer); ignored by the local trainer.",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Model:
        if (self.estimator is None) == (self.torch is None):
            raise ValueError("set exactly one of 'estimator' or 'torch'")
        if self.torch is not None and self.params:
            raise ValueError("'params' belongs to 'estimator'; torch settings go under 'torch'")
        return self

    @model_serializer(mode="wrap")
    def _omit_default_resources(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # where a model trains does not change what it learns: a spec without resources keeps its hash
        data = handler(self)
        if self.resources == Resources():
            data.pop("resources", None)
        return data

    @field_validator("estimator")
    @classmethod
    def _importable(cls, value: str | None) -> str | None:
        if value is not None:
            locate(value)
        return value

    @field_validator("params")
    @classmethod
    def _accepted(cls, params: dict[str, Any], info) -> dict[str, Any]:
        estimator = info.data.get("estimator")  # absent when it was refused: that error is enough
        problems = params_problems(estimator, params) if estimator else []
        if problems:
            raise ValueError("; ".join(problems))
        return params


class Gate(SpecModel):
    thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="Absolute bound per metric: a minimum where higher is better, else a maximum.",
    )
    min_gain: dict[str, float] = Field(
        default_factory=dict,
        description="Least improvement over the champion per metric, in its better direction "
        "(negative allows a small regression); adds to `must_beat_champion`.",
    )
    must_beat_champion: bool = Field(
        default=True,
        description="With a champion, an automatic retraining (one a sensor started) must be better on the primary "
        "metric on the holdout that "
        "stands for today's traffic (the recent one once it has `training.recent_holdout.min_rows`, else the "
        "importance-weighted one, else the fixed one): the paired interval of its gain lies above 0, so a copy of "
        "the champion or a gain within noise keeps the champion. `thresholds` and `min_gain` add to it. false: "
        "any challenger that meets them is promoted, for an operator who wants every passing retraining deployed. A "
        "run a person starts (the UI, the CLI) is judged by `thresholds` and `min_gain` alone: the person decided.",
    )

    @model_serializer(mode="wrap")
    def _omit_default_rule(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # added after specs were written: left at its default it keeps the spec's hash (and its versions' features)
        data = handler(self)
        if self.must_beat_champion:
            data.pop("must_beat_champion", None)
        return data


class FairnessLimits(SpecModel):
    demographic_parity_difference: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Classification: largest selection rate of a group less the smallest, at most this "
        "(multiclass: the worst class against the rest).",
    )
    equalized_odds_difference: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Classification: the larger of the true- and false-positive-rate gaps between groups, at "
        "most this (multiclass: the worst class against the rest).",
    )
    error_gap: float | None = Field(
        default=None,
        ge=0,
        description="Regression: largest mean absolute error of a group less the smallest, at most this "
        "(in the target's units).",
    )

    def declared(self) -> dict[str, float]:
        return {name: limit for name, limit in self.model_dump().items() if limit is not None}


class Fairness(SpecModel):
    sensitive: list[str] = Field(
        default_factory=list,
        description="Schema columns (str, int or bool) whose groups are compared on the fixed holdout; they "
        "need not be model inputs (list them in `features.exclude` to keep them out of the model).",
    )
    limits: FairnessLimits = Field(
        default_factory=FairnessLimits,
        description="Largest figure per sensitive column the gate accepts (blocking); none: reported only.",
    )


class ModelCardText(SpecModel):
    intended_use: str = Field(default="", description="What the model is for, and for whom: shown on the model card.")
    limitations: str = Field(default="", description="Where it must not be trusted: shown on the model card.")


class Evaluation(SpecModel):
    metrics: list[str] | None = Field(default=None, description="Metrics to report (default per task).")
    gate: Gate = Field(default_factory=Gate, description="Conditions the challenger must meet to deploy.")
    slices: list[str] = Field(
        default_factory=list,
        description="Schema columns (str, int or bool) whose groups get their own metrics on the model card.",
    )
    fairness: Fairness = Field(
        default_factory=Fairness, description="Fairness figures across sensitive groups, and their limits."
    )
    card: ModelCardText = Field(default_factory=ModelCardText, description="The model card's own text.")

    @model_serializer(mode="wrap")
    def _omit_default_reporting(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # sections added after specs were written: left at their defaults they keep the spec's hash (and so
        # its versions' features version)
        data = handler(self)
        for name, default in (("slices", []), ("fairness", Fairness()), ("card", ModelCardText())):
            if getattr(self, name) == default:
                data.pop(name, None)
        return data


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
        description="Weight of the declared source's rows (0 drops them once production rows can train alone). "
        "Left unset, it is 1 until the labelled production rows show the concept changed (a model fit on them "
        "beats one fit on the source, which label noise alone cannot make happen); then the source rows together "
        "weigh a tenth of the production rows. Set, it is applied as written, changed concept or not.",
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
    confidence: float = Field(
        default=0.95,
        gt=0,
        lt=1,
        description="Level of the intervals on the challenger's gains over the champion and of the concept-change "
        "test.",
    )


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
