"""Windowed aggregations count each row's entity values over (time - window, time], ties included, later rows
never: checked against a brute-force loop."""

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from mlops_assets.feature_views import window_aggregates
from mlops_assets.spec.feature_view import Aggregation
from tests.unit.feature_views.oracle import window_value

START = pd.Timestamp("2025-01-01", tz="UTC")


@pytest.mark.parametrize("seed", [0, 1])
def test_each_row_aggregates_its_entity_over_the_window_and_nothing_later(seed):
    rng = np.random.default_rng(seed)
    n = 250
    frame = pd.DataFrame(
        {
            "k": rng.choice(["a", "b", "c", None], n, p=[0.3, 0.3, 0.3, 0.1]),
            "t": START + pd.to_timedelta(rng.integers(0, 30, n), unit="h"),
            "x": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
        }
    )
    aggregations = [
        Aggregation(column="x", function=f, window=w) for f in ("count", "sum", "mean") for w in ("3h", "1d")
    ]
    got = window_aggregates(frame, "k", "t", aggregations)
    for a in aggregations:
        for i in range(n):
            if frame["k"].iloc[i] is None:
                assert np.isnan(got[a.feature_name][i])
                continue
            expected = window_value(frame, "k", "t", "x", a.function, a.window, i)
            assert np.isclose(got[a.feature_name][i], expected, equal_nan=True), (a.feature_name, i)


def test_the_default_names_say_column_function_and_window():
    names = [Aggregation(column="spend", function="sum", window=w).feature_name for w in ("30d", "12h", "90s")]
    assert names == ["spend_sum_30d", "spend_sum_12h", "spend_sum_90s"]
    assert Aggregation(column="spend", function="mean", window=timedelta(days=14)).feature_name == "spend_mean_2w"
