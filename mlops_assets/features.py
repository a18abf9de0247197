"""The feature transformer: compiled from the spec, fitted in training, pickled inside the logged model.

Training and serving call the same ``transform``, so the served model cannot compute features differently.
It works on a mapping of column name to numpy array (a DataFrame's columns or a parsed JSON request), so
a single-row request never pays for building a DataFrame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlops_assets.expressions import Expression

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

    def __post_init__(self) -> None:
        self._expressions = {name: Expression.parse(src) for name, src in self.derived.items()}

    def __getstate__(self) -> dict[str, Any]:
        return {"derived": self.derived, "steps": self.steps}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.derived, self.steps = state["derived"], state["steps"]
        self.__post_init__()

    @classmethod
    def from_spec(cls, spec) -> FeatureTransformer:
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
        return self

    def transform(self, columns: Columns) -> np.ndarray:
        """A float64 matrix with one row per input row and ``len(output_names)`` columns."""
        values = self._with_derived(columns)
        blocks = []
        for step in self.steps:
            x = values[step.column]
            if step.kind == "onehot":
                cats = np.asarray(_as_categories(x), dtype=object)
                blocks.append((cats[:, None] == np.asarray(step.categories, dtype=object)[None, :]).astype(float))
            elif step.kind == "ordinal":
                index = {c: i for i, c in enumerate(step.categories or [])}
                blocks.append(np.array([index.get(v, -1) for v in _as_categories(x)], dtype=float)[:, None])
            else:
                x = _as_float(x)
                x = np.where(np.isfinite(x), x, step.fill)
                blocks.append(((x - step.center) / step.scale)[:, None])
        return np.hstack(blocks) if blocks else np.empty((0, 0))

    def _with_derived(self, columns: Columns) -> dict[str, Any]:
        values = dict(columns)
        for name, expression in self._expressions.items():
            values[name] = expression.evaluate(values)
        return values


def _default_transforms(spec) -> list:
    from mlops_assets.spec import Transform

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
