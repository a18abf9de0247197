import numpy as np
import pandas as pd
import pytest

from mlops_assets.data.training_window import (
    LOGGED_AT,
    MS_PER_DAY,
    WindowPolicy,
    holdout_mask,
    newest_rows,
    select_training_rows,
)
from mlops_assets.errors import DataError

NOW = 1_700_000_000_000  # ms since epoch


def _frames():
    """Three source rows and four production rows logged 2, 0, 3 and 1 days ago (not in time order)."""
    source = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    ages = np.array([2, 0, 3, 1])
    production = pd.DataFrame(
        {
            "x": [10.0, 20.0, 30.0, 40.0],
            "y": [1, 1, 0, 0],
            "extra": ["a", "b", "c", "d"],
            LOGGED_AT: NOW - ages * MS_PER_DAY,
        }
    )
    return source, production


def _window(**policy):
    return select_training_rows(*_frames(), WindowPolicy(**policy), NOW)


def test_all_keeps_every_row_with_weight_one_source_first():
    window = _window(policy="all")
    assert window["x"].tolist() == [1.0, 2.0, 3.0, 10.0, 20.0, 30.0, 40.0]
    assert window["_origin"].tolist() == ["source"] * 3 + ["production"] * 4
    assert window["_weight"].dtype == np.float64 and (window["_weight"] == 1.0).all()
    assert list(window.columns) == ["x", "y", "extra", LOGGED_AT, "_origin", "_weight"]


def test_source_rows_have_no_time_and_production_rows_keep_their_milliseconds():
    window = _window(policy="all")
    assert window[LOGGED_AT].isna().tolist() == [True] * 3 + [False] * 4
    assert window[LOGGED_AT].iloc[3:].astype("int64").tolist() == (NOW - np.array([2, 0, 3, 1]) * MS_PER_DAY).tolist()
    assert window["extra"].iloc[:3].isna().all() and window["extra"].iloc[3:].tolist() == ["a", "b", "c", "d"]


def test_newest_takes_production_rows_newest_first_then_source_rows_from_the_end():
    assert _window(policy="newest", rows=2)["x"].tolist() == [20.0, 40.0]  # 0 and 1 days old
    assert _window(policy="newest", rows=6)["x"].tolist() == [2.0, 3.0, 10.0, 20.0, 30.0, 40.0]
    assert _window(policy="newest", rows=100)["x"].tolist() == [1.0, 2.0, 3.0, 10.0, 20.0, 30.0, 40.0]
    assert (_window(policy="newest", rows=6)["_weight"] == 1.0).all()


def test_max_age_keeps_recent_production_rows_and_the_source_rows_at_their_weight():
    window = _window(policy="max_age", days=1.0, source_weight=0.5)  # 1 day old is within 1 day
    assert window["x"].tolist() == [1.0, 2.0, 3.0, 20.0, 40.0]
    assert window["_weight"].tolist() == [0.5, 0.5, 0.5, 1.0, 1.0]


def test_half_life_halves_the_weight_per_half_life_and_source_rows_are_as_old_as_the_oldest():
    window = _window(policy="half_life", half_life_days=1.0)
    # production ages 2, 0, 3, 1 half-lives; the source rows as the oldest, 3 half-lives
    assert window["_weight"].tolist() == pytest.approx([0.125] * 3 + [0.25, 1.0, 0.125, 0.5], rel=1e-15)
    window = _window(policy="half_life", half_life_days=2.0, source_weight=4.0)
    assert window["_weight"].tolist() == pytest.approx([4 * 2**-1.5] * 3 + [0.5, 1.0, 2**-1.5, 2**-0.5], rel=1e-15)


def test_half_life_without_production_rows_weighs_the_source_by_source_weight_alone():
    source, production = _frames()
    window = select_training_rows(
        source, production.iloc[:0], WindowPolicy("half_life", half_life_days=1.0, source_weight=0.3), NOW
    )
    assert window["_weight"].tolist() == [0.3, 0.3, 0.3]
    assert window["_origin"].tolist() == ["source"] * 3


def test_a_row_logged_after_now_counts_as_logged_now():
    source, production = _frames()
    production.loc[0, LOGGED_AT] = NOW + MS_PER_DAY
    window = select_training_rows(source, production, WindowPolicy("half_life", half_life_days=1.0), NOW)
    assert window["_weight"].iloc[3] == 1.0


@pytest.mark.parametrize(
    "policy",
    [
        WindowPolicy("all", source_weight=0.0),
        WindowPolicy("newest", rows=6, source_weight=0.0),
        WindowPolicy("max_age", days=10.0, source_weight=0.0),
        WindowPolicy("half_life", half_life_days=1.0, source_weight=0.0),
    ],
)
def test_a_zero_source_weight_leaves_the_source_rows_out(policy):
    window = select_training_rows(*_frames(), policy, NOW)
    assert window["_origin"].tolist() == ["production"] * 4
    assert (window["_weight"] > 0).all()


def test_production_rows_without_a_time_are_refused():
    source, production = _frames()
    with pytest.raises(DataError, match=LOGGED_AT):
        select_training_rows(source, production.drop(columns=LOGGED_AT), WindowPolicy(), NOW)


@pytest.mark.parametrize(
    "fields",
    [
        {"policy": "newest"},
        {"policy": "max_age", "days": 0.0},
        {"policy": "half_life", "half_life_days": -1.0},
        {"policy": "sliding"},
        {"policy": "all", "source_weight": -0.5},
    ],
)
def test_an_unknown_policy_or_a_missing_or_negative_parameter_is_refused(fields):
    with pytest.raises(ValueError):
        WindowPolicy(**fields)


def test_newest_rows_ranks_by_time_with_ties_to_the_later_row_and_keeps_the_frame_order():
    frame = pd.DataFrame({"x": [1, 2, 3, 4], LOGGED_AT: [5, 9, 5, 7]})
    assert newest_rows(frame, 3)["x"].tolist() == [2, 3, 4]
    assert newest_rows(frame, 0).empty and len(newest_rows(frame, 10)) == 4
    assert newest_rows(frame.drop(columns=LOGGED_AT), 2)["x"].tolist() == [3, 4]


def test_holdout_keeps_each_id_on_its_side_whatever_rows_come_with_it():
    ids = pd.Series([f"row-{i}" for i in range(2_000)])
    held = pd.Series(holdout_mask(ids, 0.2, seed=7), index=ids)
    shuffled = ids.sample(frac=1.0, random_state=31).reset_index(drop=True)
    grown = pd.concat([shuffled, pd.Series([f"new-{i}" for i in range(500)]), ids.iloc[:100]], ignore_index=True)
    grown_held = holdout_mask(grown, 0.2, seed=7)
    assert (grown_held[: len(ids)] == held[shuffled].to_numpy()).all()
    assert (grown_held[-100:] == held.iloc[:100].to_numpy()).all()  # a repeated id is on its side again


def test_holdout_holds_out_about_the_share_and_the_seed_picks_the_rows():
    ids = pd.Series(np.arange(10_000))
    held = holdout_mask(ids, 0.2, seed=1)
    assert held.dtype == bool and abs(held.mean() - 0.2) < 0.02  # 5 standard errors of a binomial share
    other = holdout_mask(ids, 0.2, seed=2)
    assert abs((held & other).mean() - 0.04) < 0.01  # another seed: an independent split
    assert not holdout_mask(ids, 0.0, seed=1).any() and holdout_mask(ids, 1.0, seed=1).all()


def test_no_production_rows_leave_the_source_columns_as_they_were():
    source, _ = _frames()
    window = select_training_rows(source, pd.DataFrame(), WindowPolicy("newest", rows=2), NOW)
    assert window["x"].tolist() == [2.0, 3.0] and window["y"].dtype == source["y"].dtype
