"""The spec's column rules applied to scoring requests: one vectorised pass per request, reasons only for bad rows.

Training validates with pandera (``data/validation.py``), which takes milliseconds per call; a request gets the same
rules on its typed columns instead: the numeric columns as one matrix against per-column bounds (``gt``/``lt``
become inclusive bounds on the neighbouring float; NaN and infinities fail every bound, and NaN is then let
through where the column is nullable), the string columns with set operations over their distinct values and
one compiled regular expression per column. Only the rows that fail are examined cell by cell, to say which
rule each broke.

>>> checks = RowChecks({"x": "float"}, {"x": ColumnRules("float", le=50)})
>>> report = checks.check({}, np.array([[1.0, 71.2]]), 2)
>>> [str(v) for v in report.violations], report.reasons
(["row 1, column 'x': le 50 got 71.2"], [None, "column 'x': le 50 got 71.2"])
"""

from __future__ import annotations

import operator
import re
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np

from mlops_assets.errors import PayloadError

_MAX = np.finfo(np.float64).max
MAX_DESCRIBED = 10_000  # violations worked out per request; enough for any reader, and bounded in time


@dataclass(frozen=True)
class ColumnRules:
    """What one column accepts: a spec's ``schema.columns`` entry as plain values, so the server needs no spec."""

    dtype: str  # float, int, bool or str
    nullable: bool = True
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    isin: tuple | None = None
    notin: tuple | None = None
    str_matches: str | None = None


def column_rules(columns: Mapping[str, Any]) -> dict[str, ColumnRules]:
    """``ColumnRules`` for each entry of a spec's ``schema_.columns`` (any objects with the same attributes)."""
    return {
        name: ColumnRules(
            column.dtype,
            column.nullable,
            column.ge,
            column.gt,
            column.le,
            column.lt,
            None if column.isin is None else tuple(column.isin),
            None if column.notin is None else tuple(column.notin),
            column.str_matches,
        )
        for name, column in columns.items()
    }


class Violation(NamedTuple):
    """One cell that breaks one rule."""

    row: int
    column: str
    rule: str
    value: Any

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column!r}: {self.rule} got {shown(self.value)}"


@dataclass(frozen=True)
class RowReport:
    """The rows of a request that break the schema."""

    invalid_rows: int
    violations: list[Violation]  # by row, then column; the first ``limit`` (at most ``MAX_DESCRIBED``)
    reasons: list[str | None]  # one per row, ``None`` for a valid row

    def causes(self) -> list[Cause]:
        """Each (column, rule) the named violations break, once, with the first value that broke it."""
        found: dict[tuple[str, str], Cause] = {}
        for v in self.violations:
            found.setdefault((v.column, v.rule), Cause(v.column, v.rule, shown(v.value)))
        return list(found.values())


class Cause(NamedTuple):
    """What rejected a scoring request, as the endpoint counts it: a column and the rule (as the spec names it)
    it broke, and one value that broke it as a 400 shows it (``None``: no value to show, a missing column)."""

    column: str
    rule: str
    example: str | None = None


MISSING = "missing from the request"  # the rule a column the model needs breaks when a request lacks it
REQUEST, MALFORMED = "(request)", "malformed"  # the cause of a request that is no set of columns at all


class SchemaRejection(PayloadError):
    """A request refused for what its columns hold (a missing column, a value that breaks a rule); ``causes``
    name each column and rule, so that the endpoint counts them without reading the message."""

    def __init__(self, message: str, causes: Iterable[Cause]):
        super().__init__(message)
        self.causes = tuple(causes)


def rejection_causes(error: PayloadError) -> tuple[Cause, ...]:
    """The causes a rejected request is counted under: a ``SchemaRejection``'s own, else one for a body that
    could not be read as columns, the message's start as its example."""
    if isinstance(error, SchemaRejection):
        return error.causes
    return (Cause(REQUEST, MALFORMED, shown(str(error))),)


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class RowChecks:
    """The rules of the columns in ``dtypes`` (a column without rules: its dtype only, nulls allowed), compiled
    once. Columns in ``optional`` are checked only where a request sends them, and may be null (the row id)."""

    def __init__(self, dtypes: Mapping[str, str], rules: Mapping[str, ColumnRules], optional: Iterable[str] = ()):
        optional = set(optional)
        self._order = {name: i for i, name in enumerate(dtypes)}
        compiled = {name: rules.get(name, ColumnRules(dtype)) for name, dtype in dtypes.items()}
        compiled = {name: replace(r, nullable=True) if name in optional else r for name, r in compiled.items()}
        self.numeric = [(name, r) for name, r in compiled.items() if dtypes[name] != "str"]
        self.strings = {name: r for name, r in compiled.items() if dtypes[name] == "str"}
        self._low = np.array([_low(r) for _, r in self.numeric]).reshape(-1, 1)
        self._high = np.array([_high(r) for _, r in self.numeric]).reshape(-1, 1)
        self._nullable = np.array([r.nullable for _, r in self.numeric], dtype=bool).reshape(-1, 1)
        self._any_nullable = bool(self._nullable.any())
        self._integral = [i for i, (_, r) in enumerate(self.numeric) if r.dtype in ("int", "bool")]
        self._numeric_sets = [
            (i, _floats(r.isin), _floats(r.notin))
            for i, (_, r) in enumerate(self.numeric)
            if r.isin is not None or r.notin is not None
        ]
        self._allowed = {name: _hashable(r.isin) for name, r in self.strings.items() if r.isin is not None}
        self._forbidden = {name: _hashable(r.notin) for name, r in self.strings.items() if r.notin is not None}
        self._patterns = {n: re.compile(r.str_matches) for n, r in self.strings.items() if r.str_matches is not None}

    def check(
        self,
        columns: Mapping[str, Any],
        numeric: np.ndarray,
        n_rows: int,
        type_violations: Iterable[Violation] = (),
        limit: int | None = None,
    ) -> RowReport | None:
        """``None`` when every row is valid. ``numeric`` holds the numeric columns stacked in the order of
        ``dtypes``, one row per column; ``columns`` holds the string columns (lists of ``str`` or ``None``);
        ``type_violations`` are cells the payload could not convert to their column's type (now null). With
        ``limit``, at most that many violations are worked out, enough for an error message; an invalid row
        past them (or past ``MAX_DESCRIBED``) gets a reason that says so."""
        limit = MAX_DESCRIBED if limit is None else min(limit, MAX_DESCRIBED)
        type_violations = list(type_violations)
        bad_cells = self._numeric_failures(numeric) if self.numeric else None
        bad_strings = {name: rows for name in self.strings if (rows := self._string_failures(name, columns))}
        if not type_violations and bad_cells is None and not bad_strings:
            return None
        invalid = np.zeros(n_rows, dtype=bool)
        invalid[[v.row for v in type_violations]] = True
        for rows in bad_strings.values():
            invalid[rows] = True
        violations = type_violations
        if bad_cells is not None:
            invalid |= bad_cells.any(axis=0)
            skip = {(v.row, v.column) for v in type_violations}
            violations += self._numeric_violations(bad_cells, numeric, skip, limit)
        for name, rows in bad_strings.items():
            values = columns[name]
            violations += [Violation(r, name, self._string_rule(name, values[r]), values[r]) for r in rows[:limit]]
        violations.sort(key=lambda v: (v.row, self._order.get(v.column, 0)))
        violations = violations[:limit]
        reasons: list[str | None] = [None] * n_rows
        for v in violations:
            cell = f"column {v.column!r}: {v.rule} got {shown(v.value)}"
            reasons[v.row] = cell if reasons[v.row] is None else f"{reasons[v.row]}; {cell}"
        if len(violations) == limit:
            for row in np.flatnonzero(invalid).tolist():
                reasons[row] = reasons[row] or f"breaks the schema (a request's first {limit} violations are named)"
        return RowReport(int(invalid.sum()), violations, reasons)

    def _numeric_failures(self, matrix: np.ndarray) -> np.ndarray | None:
        """The cells that break a rule, or ``None``: one pass over all numeric columns at once."""
        ok = (matrix >= self._low) & (matrix <= self._high)
        for i in self._integral:
            ok[i] &= matrix[i] == np.floor(matrix[i])
        for i, allowed, forbidden in self._numeric_sets:
            if allowed is not None:
                ok[i] &= np.isin(matrix[i], allowed)
            if forbidden is not None:
                ok[i] &= ~np.isin(matrix[i], forbidden)
        if ok.all():  # the usual case, and then no value is NaN
            return None
        if self._any_nullable:
            ok |= np.isnan(matrix) & self._nullable
        return None if ok.all() else ~ok

    def _numeric_violations(self, bad_cells: np.ndarray, matrix: np.ndarray, skip: set, limit: int) -> list[Violation]:
        """The first ``limit`` failing cells, by row then column, that are not in ``skip``."""
        violations = []
        for row, i in np.argwhere(bad_cells.T)[: limit + len(skip)].tolist():
            name, rules = self.numeric[i]
            if (row, name) not in skip:  # a value of the wrong type, already reported
                value = float(matrix[i, row])
                violations.append(Violation(row, name, _numeric_rule(rules, value), value))
        return violations

    def _string_failures(self, name: str, columns: Mapping[str, Any]) -> list[int]:
        values = columns.get(name)
        if values is None:
            return []
        distinct = set(values)
        bad: set[Any] = set()
        if None in distinct:
            distinct.discard(None)
            if not self.strings[name].nullable:
                bad.add(None)
        if name in self._allowed:
            bad |= distinct - self._allowed[name]
        if name in self._forbidden:
            bad |= distinct & self._forbidden[name]
        if name in self._patterns:
            bad |= {v for v in distinct if not self._patterns[name].match(v)}
        return [row for row, value in enumerate(values) if value in bad] if bad else []

    def _string_rule(self, name: str, value: str | None) -> str:
        rules = self.strings[name]
        if value is None:
            return "not nullable"
        if name in self._allowed and value not in self._allowed[name]:
            return f"isin {list(rules.isin or ())}"
        if name in self._forbidden and value in self._forbidden[name]:
            return f"notin {list(rules.notin or ())}"
        return f"str_matches {rules.str_matches!r}"


def _low(rules: ColumnRules) -> float:
    """The least allowed value, every bound made inclusive; never below the least finite float."""
    bounds = [0.0 if rules.dtype == "bool" else -_MAX]
    bounds += [] if rules.ge is None else [rules.ge]
    bounds += [] if rules.gt is None else [np.nextafter(rules.gt, np.inf)]
    return max(bounds)


def _high(rules: ColumnRules) -> float:
    bounds = [1.0 if rules.dtype == "bool" else _MAX]
    bounds += [] if rules.le is None else [rules.le]
    bounds += [] if rules.lt is None else [np.nextafter(rules.lt, -np.inf)]
    return min(bounds)


def _floats(values: tuple | None) -> np.ndarray | None:
    if values is None:
        return None
    return np.array([v for v in values if isinstance(v, int | float) and not isinstance(v, bool)], dtype=np.float64)


def _hashable(values: tuple) -> frozenset:
    return frozenset(v for v in values if isinstance(v, Hashable))


def _numeric_rule(rules: ColumnRules, value: float) -> str:
    """The first rule ``value`` breaks, named as the spec names it."""
    if np.isnan(value):
        return "not nullable"
    if np.isinf(value):
        return "finite"
    for name, holds in (("ge", operator.ge), ("gt", operator.gt), ("le", operator.le), ("lt", operator.lt)):
        bound = getattr(rules, name)
        if bound is not None and not holds(value, bound):
            return f"{name} {_number(bound)}"
    if rules.dtype == "bool" and value not in (0.0, 1.0):
        return "dtype bool (true, false, 0 or 1)"
    if rules.dtype == "int" and not value.is_integer():
        return "dtype int"
    if rules.isin is not None and value not in rules.isin:
        return f"isin {list(rules.isin)}"
    return f"notin {list(rules.notin or ())}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)
