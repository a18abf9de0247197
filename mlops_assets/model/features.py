"""The feature transformer: compiled from the spec, fitted in training, pickled inside the logged model.

Training and serving call the same ``transform``, so the served model cannot compute features differently.
It works on a mapping of column name to numpy array (a DataFrame's columns or a parsed JSON request), so
a single-row request never pays for building a DataFrame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_assets.model.expressions import Expression

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec

Columns = Mapping[str, Any]


@dataclass
class _Step:
    """How one input column becomes output columns, and what was learnt for it in ``fit``."""

    column: str
    kind: str  # "standard", "minmax", "passthrough", "onehot" or "ordinal"
    categories: list[Any] | None = None
    fill: float = 0.0
    center: float = 0.0
    scale: float = 1.0

    @property
    def categorical(self) -> bool:
        return self.kind in ("onehot", "ordinal")

    @property
    def output_names(self) -> list[str]:
        if self.kind == "onehot":
            return [f"{self.column}={c}" for c in self.categories or []]
        return [self.column]


@dataclass
class FeatureTransformer:
    """Derived columns, then one step per feature column, in the spec's column order.

    Numeric columns: missing values are filled with the training mean, then scaled as declared.
    Categorical columns: categories are learnt in ``fit`` (or given, for ordinal); an unseen category
    encodes as all zeros (onehot) or -1 (ordinal) instead of failing the request.
    """

    derived: dict[str, str]
    steps: list[_Step]
    _expressions: dict[str, Expression] = field(init=False, repr=False)
    _plan: _Plan = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._expressions = {name: Expression.parse(src) for name, src in self.derived.items()}
        self._plan = _Plan.of(self.steps)

    def __getstate__(self) -> dict[str, Any]:
        return {"derived": self.derived, "steps": self.steps}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.derived, self.steps = state["derived"], state["steps"]
        self.__post_init__()

    @classmethod
    def from_spec(cls, spec: PipelineSpec) -> FeatureTransformer:
        kinds: dict[str, tuple[str, list[Any] | None]] = {}
        for transform in spec.features.transforms or _default_transforms(spec):
            for column in transform.columns:
                given = (transform.categories or {}).get(column)
                kinds[column] = (transform.kind, given)
        steps = [_Step(column, *kinds.get(column, ("passthrough", None))) for column in spec.feature_columns]
        return cls(derived=dict(spec.features.derived), steps=steps)

    @property
    def output_names(self) -> list[str]:
        return [name for step in self.steps for name in step.output_names]

    def fit(self, columns: Columns) -> FeatureTransformer:
        values = self._with_derived(columns)
        for step in self.steps:
            x = values[step.column]
            if step.categorical:
                if step.categories is None:
                    step.categories = sorted({v for v in _as_categories(x) if v is not None})
                continue
            x = _as_float(x)
            finite = x[np.isfinite(x)]
            step.fill = float(finite.mean()) if finite.size else 0.0
            if step.kind == "standard":
                step.center, step.scale = step.fill, float(finite.std()) if finite.size else 1.0
            elif step.kind == "minmax" and finite.size:
                step.center, step.scale = float(finite.min()), float(finite.max() - finite.min())
            step.scale = step.scale or 1.0
        self._plan = _Plan.of(self.steps)
        return self

    def transform(self, columns: Columns) -> np.ndarray:
        """A float64 matrix with one row per input row and ``len(output_names)`` columns.

        All numeric steps run as one matrix operation: per-column numpy calls cost more than the arithmetic
        for a single-row request.
        """
        if not self.steps:
            return np.empty((0, 0))
        values = self._with_derived(columns)
        plan = self._plan
        out = np.empty((len(values[self.steps[0].column]), plan.width))
        if plan.numeric:
            x = np.array([_as_float(values[name]) for name in plan.numeric])  # one row per numeric column
            out[:, plan.numeric_at] = ((np.where(np.isfinite(x), x, plan.fill) - plan.center) / plan.scale).T
        for step, at in plan.categorical:
            out[:, at] = _encode(step, values[step.column])
        return out

    def _with_derived(self, columns: Columns) -> dict[str, Any]:
        values = dict(columns)
        for name, expression in self._expressions.items():
            values[name] = expression.evaluate(values)
        return values


@dataclass(frozen=True)
class _Plan:
    """The fitted steps laid out for ``transform``: numeric parameters as column vectors, output positions.

    Derived from the steps, never pickled: rebuilt on construction, after ``fit`` and on unpickling.
    """

    numeric: list[str]  # input column of each numeric step, in step order
    numeric_at: np.ndarray  # output column of each numeric step
    fill: np.ndarray  # shape (n_numeric, 1), like center and scale: numeric columns are rows in transform
    center: np.ndarray
    scale: np.ndarray
    categorical: list[tuple[_Step, slice]]  # each categorical step and its output columns
    width: int

    @classmethod
    def of(cls, steps: list[_Step]) -> _Plan:
        numeric, numeric_at, categorical = [], [], []
        width = 0
        for step in steps:
            size = len(step.output_names)
            if step.categorical:
                categorical.append((step, slice(width, width + size)))
            else:
                numeric.append(step)
                numeric_at.append(width)
            width += size
        return cls(
            numeric=[step.column for step in numeric],
            numeric_at=np.array(numeric_at, dtype=np.intp),
            fill=np.array([[step.fill] for step in numeric], dtype=np.float64),
            center=np.array([[step.center] for step in numeric], dtype=np.float64),
            scale=np.array([[step.scale] for step in numeric], dtype=np.float64),
            categorical=categorical,
            width=width,
        )


def _encode(step: _Step, x: Any) -> np.ndarray:
    """One categorical column as its output block: indicator columns (onehot) or the category index (ordinal)."""
    if step.kind == "onehot":
        cats = np.asarray(_as_categories(x), dtype=object)
        return (cats[:, None] == np.asarray(step.categories, dtype=object)[None, :]).astype(float)
    index = {c: i for i, c in enumerate(step.categories or [])}
    return np.array([index.get(v, -1) for v in _as_categories(x)], dtype=float)[:, None]


def _default_transforms(spec: PipelineSpec) -> list:
    from mlops_assets.spec.data import Transform

    numeric = [
        c for c in spec.feature_columns if spec.schema_.columns.get(c) is None or spec.schema_.columns[c].dtype != "str"
    ]
    strings = [c for c in spec.feature_columns if c not in numeric]
    return [Transform(kind=kind, columns=cols) for kind, cols in (("standard", numeric), ("onehot", strings)) if cols]


def _as_float(x: Any) -> np.ndarray:
    array = np.asarray(x)
    if array.dtype == object:
        array = np.array([np.nan if v is None else v for v in array], dtype=float)
    return array.astype(np.float64, copy=False)


def _as_categories(x: Any) -> Sequence[Any]:
    """Categories compare as strings, so a JSON ``1`` and a CSV ``"1"`` are the same category."""
    return [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in np.asarray(x).tolist()]
