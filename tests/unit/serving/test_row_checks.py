"""Serving's vectorised schema checks: each rule on its own, and the same verdicts as training's validation."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_assets.data.validation import validate
from mlops_assets.serving.payload import coerce_columns
from mlops_assets.serving.row_checks import ColumnRules, RowChecks, column_rules
from mlops_assets.spec import load_spec

REPO = Path(__file__).resolve().parents[3]


def verdicts(rules: dict[str, ColumnRules], columns: dict, optional=()) -> list[str | None]:
    dtypes = {name: r.dtype for name, r in rules.items()}
    required = {name: dtype for name, dtype in dtypes.items() if name not in optional}
    coerced = coerce_columns({n: v for n, v in columns.items() if n not in optional}, required)
    typed = {**coerced.columns, **{n: columns[n] for n in optional if n in columns}}
    report = RowChecks(dtypes, rules, optional).check(typed, coerced.numeric, coerced.n_rows, coerced.violations)
    return [None] * coerced.n_rows if report is None else report.reasons


@pytest.mark.parametrize(
    ("rules", "values", "reason"),
    [
        (ColumnRules("float", ge=0), [0.0, -0.5], "ge 0 got -0.5"),
        (ColumnRules("float", gt=0), [1e-300, 0.0], "gt 0 got 0.0"),
        (ColumnRules("float", le=50), [50.0, 50.000001], "le 50 got 50.000001"),
        (ColumnRules("float", lt=0.5), [0.4999, 0.5], "lt 0.5 got 0.5"),
        (ColumnRules("float", nullable=False), [1.0, None], "not nullable got nan"),
        (ColumnRules("float", nullable=False), [1.0, float("nan")], "not nullable got nan"),
        (ColumnRules("float"), [None, float("inf")], "finite got inf"),
        (ColumnRules("float"), [1.0, "-Infinity"], "finite got -inf"),
        (ColumnRules("float"), [1.0, True], "dtype float got True"),
        (ColumnRules("int"), [3, 3.5], "dtype int got 3.5"),
        (ColumnRules("bool"), [False, 2], "dtype bool (true, false, 0 or 1) got 2.0"),
        (ColumnRules("float", isin=(1, 2)), [2.0, 3.0], "isin [1, 2] got 3.0"),
        (ColumnRules("float", notin=(0,)), [1.0, 0.0], "notin [0] got 0.0"),
        (ColumnRules("str", nullable=False), ["a", None], "not nullable got None"),
        (ColumnRules("str", isin=("a", "b")), ["a", "c"], "isin ['a', 'b'] got 'c'"),
        (ColumnRules("str", notin=("x",)), ["a", "x"], "notin ['x'] got 'x'"),
        (ColumnRules("str", str_matches="^P[0-9]{4}$"), ["P0001", "P01"], "str_matches '^P[0-9]{4}$' got 'P01'"),
        (ColumnRules("str"), ["a", {"b": 1}], "dtype str got {'b': 1}"),
    ],
)
def test_each_rule_flags_the_row_that_breaks_it_and_names_the_rule(rules, values, reason):
    assert verdicts({"c": rules}, {"c": values}) == [None, f"column 'c': {reason}"]


def test_a_row_lists_every_column_it_breaks_and_a_wrong_type_is_not_also_reported_as_null():
    rules = {"a": ColumnRules("float", nullable=False, le=1), "b": ColumnRules("float", nullable=False)}
    reasons = verdicts(rules, {"a": [5.0, 0.5], "b": ["x", 1.0]})
    assert reasons == ["column 'a': le 1 got 5.0; column 'b': dtype float got 'x'", None]


def test_the_row_id_is_checked_only_where_it_is_sent_and_may_be_null():
    rules = {"x": ColumnRules("float"), "id": ColumnRules("str", nullable=False, str_matches="^P[0-9]{4}$")}
    assert verdicts(rules, {"x": [1.0, 2.0]}, optional=["id"]) == [None, None]
    found = verdicts(rules, {"x": [1.0, 2.0, 3.0], "id": ["P0001", None, "Q7"]}, optional=["id"])
    assert found == [None, None, "column 'id': str_matches '^P[0-9]{4}$' got 'Q7'"]


def test_a_limit_names_only_the_first_violations_but_counts_every_invalid_row():
    checks = RowChecks({"x": "float"}, {"x": ColumnRules("float", le=0)})
    report = checks.check({}, np.arange(1.0, 101.0).reshape(1, -1), 100, limit=3)
    assert report.invalid_rows == 100 and [v.row for v in report.violations] == [0, 1, 2]


def test_serving_keeps_exactly_the_rows_training_validation_keeps():
    """pandera, as training runs it (validation.py), is the reference; inputs and the id, with nulls,
    out-of-range values and malformed ids sprinkled over 500 bundled rows (seeded)."""
    spec = load_spec(REPO / "pipelines" / "breast_cancer.yaml")
    frame = pd.read_csv(REPO / "pipelines" / "data" / "breast_cancer" / "features.csv").head(500)
    frame = frame.assign(diagnosis="benign")
    rng = np.random.default_rng(7)
    for column in [*spec.input_columns, spec.id_column]:
        hit = rng.random(len(frame)) < 0.02
        if column == spec.id_column:
            frame[column] = frame[column].where(~hit, "X" + frame[column].str[1:])
        else:
            bad = rng.choice([np.nan, -1.0, 1e6, 0.0], size=len(frame))
            frame[column] = frame[column].where(~hit, bad)
    training = validate(spec, frame)
    kept_by_training = set(training.kept[spec.id_column])
    rules = column_rules(spec.schema_.columns)
    dtypes = {c: spec.schema_.columns[c].dtype for c in spec.input_columns}
    checks = RowChecks({**dtypes, spec.id_column: "str"}, rules, optional=[spec.id_column])
    coerced = coerce_columns({c: frame[c].tolist() for c in spec.input_columns}, dtypes)
    typed = {**coerced.columns, spec.id_column: frame[spec.id_column].tolist()}
    report = checks.check(typed, coerced.numeric, coerced.n_rows)
    kept_by_serving = {i for i, reason in zip(frame[spec.id_column], report.reasons, strict=True) if reason is None}
    assert 0 < len(training.quarantined) < len(frame) / 2
    assert kept_by_serving == kept_by_training
