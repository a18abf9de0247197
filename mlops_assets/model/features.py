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


class StackedColumns(dict):
    """Columns (name to values) whose numeric ones are also held as one float64 matrix, ``numeric``: one row per
    name of ``numeric_names`` (whose values in the mapping are those rows), one column per input row. A parsed
    request is one (serving/payload.py): ``transform`` takes the matrix as it is instead of stacking the
    columns again with a call per column."""

    __slots__ = ("numeric", "numeric_names")

    def __init__(self, values: Mapping[str, Any], numeric: np.ndarray, numeric_names: Sequence[str]):
        super().__init__(values)
        self.numeric, self.numeric_names = numeric, numeric_names


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

    @property
    def stacked_inputs(self) -> list[str]:
        """The numeric input columns, in the order ``transform_stacked`` takes them as is (no reordering)."""
        return list(self._plan.numeric)

    @property
    def categories(self) -> dict[str, list[Any]]:
        """Each categorical input column and its categories, in the order of its step's outputs."""
        return {step.column: list(step.categories or []) for step, _ in self._plan.categorical}

    @property
    def derives(self) -> bool:
        """Whether some input is computed from the others (``derived``): then only ``transform`` applies."""
        return bool(self._expressions)

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
        for a single-row request. ``StackedColumns`` give that matrix's input as it is (``transform_stacked``).
        """
        if not self.steps:
            return np.empty((0, 0))
        if isinstance(columns, StackedColumns):
            out = self.transform_stacked(columns.numeric, columns.numeric_names, columns)
            if out is not None:
                return out
        values = self._with_derived(columns)
        plan = self._plan
        out = np.empty((len(values[self.steps[0].column]), plan.width))
        if plan.numeric:
            x = np.array([_as_float(values[name]) for name in plan.numeric])  # one row per numeric column
            out[:, plan.numeric_at] = ((np.where(np.isfinite(x), x, plan.fill) - plan.center) / plan.scale).T
        for step, at in plan.categorical:
            out[:, at] = _encode(step, values[step.column])
        return out

    def transform_stacked(
        self,
        numeric: np.ndarray,
        names: Sequence[str],
        columns: Columns,
        *,
        codes: Mapping[str, np.ndarray] | None = None,
        overwrite: bool = False,
        out: np.ndarray | None = None,
    ) -> np.ndarray | None:
        """``transform(columns)``, bit for bit, for inputs whose numeric columns arrive as one matrix: ``numeric``
        (float64) holds the columns ``names``, one row per name and one column per input row, as a parsed
        request or a record batch holds them. No call per column: the matrix is the numeric steps' input.

        ``columns`` holds the categorical inputs; ``codes`` may give a categorical column as the index of each
        row's category in its step's categories (-1: unseen or null) instead, worked out without a Python loop
        (batch.py). With ``overwrite`` the arithmetic runs in ``numeric`` itself (a scratch matrix; a request's
        matrix is logged, and is never overwritten); ``out``, of the result's shape, is written instead of a new
        matrix (a batch scorer's, reused: a fresh matrix of many rows costs page faults). ``None`` where the
        matrix cannot serve: derived columns (their expressions take named columns), or a numeric input missing
        from ``names``.
        """
        plan = self._plan
        index = plan.rows_of(names)
        if self._expressions or not self.steps or index is None:
            return None
        x = numeric if index is _SAME else numeric[index]
        shape = (numeric.shape[1], plan.width)
        out = out if out is not None and out.shape == shape else np.empty(shape)
        if plan.numeric:
            if overwrite or index is not _SAME:  # x is a copy or scratch: the same operations, in place
                np.copyto(x, plan.fill, where=~np.isfinite(x))
                x -= plan.center
                x /= plan.scale
            else:
                x = (np.where(np.isfinite(x), x, plan.fill) - plan.center) / plan.scale
            out[:, plan.numeric_out] = x.T
        for step, at in plan.categorical:
            code = None if codes is None else codes.get(step.column)
            out[:, at] = _encode(step, columns[step.column]) if code is None else _encode_codes(step, code)
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
    numeric_out: np.ndarray | slice  # numeric_at, as a slice where the numeric outputs are adjacent and in order
    _rows: dict[tuple[str, ...], Any] = field(default_factory=dict, compare=False, repr=False)

    def rows_of(self, names: Sequence[str]) -> np.ndarray | object | None:
        """Where the numeric inputs sit among the rows of a matrix of ``names``: ``_SAME`` when they are its
        rows in order, ``None`` when one is missing. Worked out once per layout (an endpoint has one)."""
        key = tuple(names)
        found = self._rows.get(key, _UNKNOWN)
        if found is _UNKNOWN:
            at = {name: i for i, name in enumerate(key)}
            if not all(name in at for name in self.numeric):
                found = None
            elif list(key) == self.numeric:
                found = _SAME
            else:
                found = np.array([at[name] for name in self.numeric], dtype=np.intp)
            self._rows[key] = found
        return found

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
            numeric_out=_as_slice(numeric_at),
        )


_SAME, _UNKNOWN = object(), object()  # ``_Plan.rows_of``: the matrix's rows are the numeric inputs; not worked out


def _as_slice(at: list[int]) -> np.ndarray | slice:
    """Output columns as a slice where they are adjacent and in order (a slice assigns faster than an index)."""
    if at and at == list(range(at[0], at[0] + len(at))):
        return slice(at[0], at[0] + len(at))
    return np.array(at, dtype=np.intp)


def _encode(step: _Step, x: Any) -> np.ndarray:
    """One categorical column as its output block: indicator columns (onehot) or the category index (ordinal)."""
    if step.kind == "onehot":
        cats = np.asarray(_as_categories(x), dtype=object)
        return (cats[:, None] == np.asarray(step.categories, dtype=object)[None, :]).astype(float)
    index = {c: i for i, c in enumerate(step.categories or [])}
    return np.array([index.get(v, -1) for v in _as_categories(x)], dtype=float)[:, None]


def _encode_codes(step: _Step, code: np.ndarray) -> np.ndarray:
    """``_encode`` from each row's category index (-1: unseen or null), the same values without a Python loop."""
    if step.kind == "onehot":
        return (code[:, None] == np.arange(len(step.categories or []))[None, :]).astype(float)
    return code.astype(float)[:, None]


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
