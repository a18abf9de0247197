"""Which holdout decides the gate: the recent one only when it can, and never on an undefined metric."""

import numpy as np
import pandas as pd
import pytest

from mlops_assets.evaluation.holdouts import judge
from mlops_assets.model.pipeline_model import fit_pipeline_model
from mlops_assets.spec import PipelineSpec

SPEC = {
    "name": "credit",
    "task": "binary",
    "target": "y",
    "source": {"path": "train.csv"},
    "schema": {"columns": {"x": {"dtype": "float"}, "y": {"dtype": "int", "isin": [0, 1]}}},
    "model": {"estimator": "sklearn.linear_model.LogisticRegression"},
    "evaluation": {"metrics": ["roc_auc", "accuracy"], "gate": {"min_gain": {"roc_auc": -0.01}}},
    "training": {"recent_holdout": {"min_rows": 50}},
}


def rows(n: int, seed: int, flipped: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    signal = (-x if flipped else x) + rng.normal(scale=0.5, size=n)
    return pd.DataFrame({"x": x, "y": (signal > 0).astype(int)})


@pytest.fixture
def spec(tmp_path):
    (tmp_path / "train.csv").write_text("x,y\n")
    return PipelineSpec.model_validate(SPEC, context={"base_dir": tmp_path})


def fitted(spec, frame):
    from sklearn.linear_model import LogisticRegression

    return fit_pipeline_model(spec, frame, LogisticRegression())


def test_a_recent_holdout_of_one_class_reports_but_does_not_decide(spec):
    champion, challenger = fitted(spec, rows(500, 0)), fitted(spec, rows(500, 1, flipped=True))
    one_class = rows(400, 2)
    one_class = one_class[one_class["y"] == 1].reset_index(drop=True)  # roc_auc is undefined on it
    judgement = judge(spec, challenger, champion, rows(200, 3), one_class)
    recent = judgement.by_name()["recent"]
    assert not recent.decides and "undefined" in recent.note
    assert judgement.by_name()["fixed"].decides  # the fixed holdout keeps guarding
    assert not judgement.gate.passed  # and the flipped challenger stays out


def test_a_recent_holdout_of_both_classes_decides_on_today_s_concept(spec):
    champion, challenger = fitted(spec, rows(500, 0)), fitted(spec, rows(500, 1, flipped=True))
    judgement = judge(spec, challenger, champion, rows(200, 3), rows(200, 4, flipped=True))
    assert judgement.by_name()["recent"].decides and judgement.gate.passed
    assert "the concept changed" in judgement.by_name()["fixed"].note
