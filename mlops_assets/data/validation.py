"""Schema validation that keeps every row: valid rows go on, failing rows are quarantined with reasons."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlops_assets.errors import DataError

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec

_PANDAS_DTYPES = {"float": "float64", "str": "str", "bool": "bool"}


@dataclass(frozen=True)
class ValidationResult:
    kept: pd.DataFrame
    quarantined: pd.DataFrame  # the failing rows as they arrived, plus a ``_failures`` column
    failures_by_check: dict[str, int]


def build_schema(spec: PipelineSpec, with_checks: bool = True, only: Collection[str] | None = None):
    """The pandera schema of the spec: coercion, nullability and (optionally) the declared checks; ``only``
    restricts it to some of the columns."""
    import pandera.pandas as pa

    columns = {}
    for name, column in spec.schema_.columns.items():
        if only is not None and name not in only:
            continue
        bounds = (
            ("ge", column.ge),
            ("gt", column.gt),
            ("le", column.le),
            ("lt", column.lt),
            ("isin", column.isin),
            ("notin", column.notin),
            ("str_matches", column.str_matches),
        )
        checks = [getattr(pa.Check, check)(value) for check, value in bounds if value is not None]
        dtype = "Int64" if column.dtype == "int" and column.nullable else _PANDAS_DTYPES.get(column.dtype, "int64")
        columns[name] = pa.Column(dtype, checks=checks if with_checks else [], nullable=column.nullable, coerce=True)
    strict = {"reject": True, "drop": "filter", "keep": False}[spec.schema_.unknown_columns]
    return pa.DataFrameSchema(columns, strict=strict)


def validate(spec: PipelineSpec, frame: pd.DataFrame, carry: Sequence[str] = ()) -> ValidationResult:
    """Validate lazily; raise ``DataError`` only for problems no single row causes (a missing column).

    Two passes, because pandera cannot run value checks on a column that failed to coerce: first types
    and nulls, then the declared checks on the rows that passed the first. ``carry`` names columns outside
    the schema that travel with their rows unchecked (when a labelled production row was served); with
    them, the schema's columns that ``frame`` lacks are not checked either (production rows carry the
    inputs, the id and the label, not the columns the model never sees).
    """
    frame = frame.reset_index(drop=True)
    carried, frame = frame[list(carry)], frame.drop(columns=list(carry))
    only = set(frame.columns) if carry else None
    type_failures = _row_failures(spec, build_schema(spec, with_checks=False, only=only), frame)
    checks = build_schema(spec, only=only)
    check_failures = _row_failures(spec, checks, frame.drop(index=type_failures.index.unique()))
    cases = pd.concat([type_failures, check_failures])
    reasons = cases.groupby(level=0).agg("; ".join)
    bad = frame.index.isin(reasons.index)
    kept = checks.validate(frame[~bad]).reset_index(drop=True)
    kept = kept.assign(**{c: carried.loc[~bad, c].to_numpy() for c in carry})
    quarantined = frame[bad].assign(_failures=reasons.reindex(frame.index[bad]).to_numpy())
    counts = cases.str.replace(r" got .*", "", regex=True).value_counts()
    return ValidationResult(kept, quarantined.reset_index(drop=True), {k: int(v) for k, v in counts.items()})


def _row_failures(spec: PipelineSpec, schema, frame: pd.DataFrame) -> pd.Series:
    """One ``"column: check got value"`` string per failure, indexed by row."""
    import pandera.errors

    try:
        schema.validate(frame, lazy=True)
        return pd.Series([], dtype=str)
    except pandera.errors.SchemaErrors as errors:
        cases = errors.failure_cases
    cases = cases[~cases["check"].astype(str).str.startswith("dtype(")]
    table_level = cases[cases["index"].isna()]
    if not table_level.empty:
        problems = "; ".join(
            sorted({_describe_table_failure(r.check, r.column, r.failure_case) for r in table_level.itertuples()})
        )
        raise DataError(f"{spec.name}: the data does not fit the schema as a whole ({problems})")
    reasons = (
        cases["column"].astype(str) + ": " + cases["check"].astype(str) + " got " + cases["failure_case"].astype(str)
    )
    return pd.Series(reasons.to_numpy(), index=cases["index"].astype(int).to_numpy())


def _describe_table_failure(check: str, column: str, case: str) -> str:
    if check == "column_in_schema":
        return f"unknown column {case!r} (schema.unknown_columns: drop or keep accepts it)"
    if check == "column_in_dataframe":
        return f"missing column {case!r}"
    return f"{column}: {check} {case}"


def split_holdout(frame: pd.DataFrame, holdout: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Deterministic split: the same rows and seed give the same train and holdout sets."""
    order = np.random.default_rng(seed).permutation(len(frame))
    n_holdout = max(1, round(len(frame) * holdout))
    return (
        frame.iloc[np.sort(order[n_holdout:])].reset_index(drop=True),
        frame.iloc[np.sort(order[:n_holdout])].reset_index(drop=True),
    )
