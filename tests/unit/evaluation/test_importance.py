import numpy as np
import pandas as pd
import pytest

from mlops_assets.evaluation.importance import permutation_importance
from mlops_assets.model.metrics import METRICS


def toy_frame(rows=400, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    signal, noise = rng.normal(size=rows), rng.normal(size=rows)
    return pd.DataFrame({"signal": signal, "noise": noise, "y": 3 * signal})


def mae_of_a_model_that_reads_only_signal(frame: pd.DataFrame) -> float:
    return METRICS["mae"].compute(frame["y"].to_numpy(), 3 * frame["signal"].to_numpy(), None)


def test_the_column_the_model_reads_matters_and_noise_does_not():
    got = permutation_importance(mae_of_a_model_that_reads_only_signal, toy_frame(), ["noise", "signal"], "mae")
    assert [i.column for i in got] == ["signal", "noise"]
    assert got[0].mean > 1.0 and got[0].std > 0
    assert got[1].mean == 0.0 and got[1].std == 0.0


def test_worsening_is_positive_for_a_metric_where_higher_is_better():
    def r2(frame):
        return METRICS["r2"].compute(frame["y"].to_numpy(), 3 * frame["signal"].to_numpy(), None)

    (signal,) = permutation_importance(r2, toy_frame(), ["signal"], "r2")
    assert signal.mean == pytest.approx(2.0, abs=0.3)  # r2 falls from 1 to about -1 on a shuffled column


def test_the_same_seed_gives_the_same_importance_and_rows_are_capped():
    seen = []

    def score(frame):
        seen.append(len(frame))
        return mae_of_a_model_that_reads_only_signal(frame)

    first = permutation_importance(score, toy_frame(), ["signal"], "mae", seed=3, max_rows=100)
    again = permutation_importance(score, toy_frame(), ["signal"], "mae", seed=3, max_rows=100)
    assert first == again and set(seen) == {100} and len(seen) == 2 * (1 + 5)
