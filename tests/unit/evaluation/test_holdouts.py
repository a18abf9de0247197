"""Which holdout decides the gate: the recent one only when it can, and never on an undefined metric."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

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


# A spec with no declared gate condition: the default rule alone decides (issue 18).
PLAIN = {
    "name": "credit",
    "task": "binary",
    "target": "y",
    "source": {"path": "train.csv"},
    "schema": {"columns": {"x1": {"dtype": "float"}, "x2": {"dtype": "float"}, "y": {"dtype": "int", "isin": [0, 1]}}},
    "model": {"estimator": "sklearn.linear_model.LogisticRegression"},
    "evaluation": {"metrics": ["roc_auc", "accuracy"]},
    "training": {"recent_holdout": {"min_rows": 50}},
}


def cases(n: int, seed: int, flipped: bool = False, noise: float = 0.0) -> pd.DataFrame:
    """Two inputs; ``noise`` flips that share of the labels at random (symmetric label noise)."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    y = ((-x1 if flipped else x1) + 0.5 * x2 + rng.normal(scale=0.5, size=n) > 0).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "y": np.where(rng.random(n) < noise, 1 - y, y)})


def plain_spec(tmp_path, **gate):
    (tmp_path / "train.csv").write_text("x1,x2,y\n")
    raw = {**PLAIN, "evaluation": {**PLAIN["evaluation"], "gate": gate}}
    return PipelineSpec.model_validate(raw, context={"base_dir": tmp_path})


def fit(spec, frame, c: float = 1.0):
    from sklearn.linear_model import LogisticRegression

    return fit_pipeline_model(spec, frame, LogisticRegression(C=c))


def test_with_an_empty_gate_a_copy_of_the_champion_is_refused(tmp_path):
    spec = plain_spec(tmp_path)
    champion = fit(spec, cases(2_000, 0))
    judgement = judge(spec, fit(spec, cases(2_000, 0)), champion, cases(1_000, 3), cases(500, 4), "7")
    assert judgement.deciding == "recent" and not judgement.gate.passed
    assert judgement.by_name()["recent"].gains["roc_auc"] == [0.0, 0.0, 0.0]
    assert judgement.gate.reasons[0] == (
        "FAIL: not better than champion v7 on the recent holdout: roc_auc gain +0.0000 (CI +0.0000 to +0.0000)"
    )


def test_a_challenger_that_ranks_as_the_champion_does_has_gain_zero_and_is_refused(tmp_path):
    from sklearn.metrics import roc_auc_score

    spec = plain_spec(tmp_path)
    one_input = cases(2_000, 0).assign(x2=0.0)  # one input that varies: every fit ranks rows alike
    champion, challenger = fit(spec, one_input), fit(spec, one_input, c=0.001)
    recent = cases(500, 4)
    mine, theirs = (m.predict(recent).proba[:, 1] for m in (challenger, champion))
    assert not np.allclose(mine, theirs)  # other probabilities ...
    assert roc_auc_score(recent["y"], mine) == roc_auc_score(recent["y"], theirs)  # ... the same ranking
    judgement = judge(spec, challenger, champion, cases(1_000, 3), recent)
    assert judgement.by_name()["recent"].gains["roc_auc"][0] == 0.0 and not judgement.gate.passed
    assert judgement.gate.reasons[0].startswith("FAIL: not better than the champion on the recent holdout")


def test_a_slightly_worse_challenger_is_refused(tmp_path):
    spec = plain_spec(tmp_path)
    champion, challenger = fit(spec, cases(2_000, 0)), fit(spec, cases(60, 1))
    judgement = judge(spec, challenger, champion, cases(1_000, 3), cases(500, 4))
    gain, low, high = judgement.by_name()["recent"].gains["roc_auc"]
    assert low < gain < 0 < high  # worse, though not confidently: the old rule let it through
    assert not judgement.gate.passed


def test_a_clearly_better_challenger_passes_and_the_fixed_holdout_guards_while_the_concept_holds(tmp_path):
    spec = plain_spec(tmp_path)
    champion, challenger = fit(spec, cases(30, 1)), fit(spec, cases(2_000, 0))
    judgement = judge(spec, challenger, champion, cases(1_000, 3), cases(500, 4), "7")
    assert judgement.gate.passed and judgement.deciding == "recent"
    assert judgement.gate.reasons[0].startswith("ok: better than champion v7 on the recent holdout: roc_auc gain +")
    assert judgement.gate.reasons[1].startswith("fixed holdout: ok: not confidently worse than champion v7")
    assert judgement.by_name()["fixed"].note.startswith("the concept holds")
    assert "\n\nDecided on the recent holdout (500 labelled rows).\n" in judgement.markdown()
    assert judgement.markdown().startswith("| holdout | rows | decides | roc_auc | accuracy |")


def test_a_recent_holdout_under_min_rows_is_reported_and_the_fixed_one_decides(tmp_path):
    spec = plain_spec(tmp_path)
    champion, challenger = fit(spec, cases(30, 1)), fit(spec, cases(2_000, 0))
    judgement = judge(spec, challenger, champion, cases(1_000, 3), cases(40, 4))
    recent = judgement.by_name()["recent"]
    assert judgement.deciding == "fixed" and judgement.by_name()["fixed"].decides and not recent.decides
    assert recent.note == "40 rows, fewer than training.recent_holdout.min_rows (50): reported, not deciding"
    assert judgement.gate.passed and "on the fixed holdout" in judgement.gate.reasons[0]
    assert "\n\nDecided on the fixed holdout (1000 labelled rows).\n" in judgement.markdown()


def test_without_a_deciding_recent_holdout_the_weighted_one_decides(tmp_path):
    from mlops_assets.data.training_set import IMPORTANCE

    spec = plain_spec(tmp_path)
    champion = fit(spec, cases(2_000, 0))
    holdout = cases(1_000, 3)
    holdout[IMPORTANCE] = np.exp(holdout["x1"]) / np.exp(holdout["x1"]).mean()  # toward large x1
    judgement = judge(spec, fit(spec, cases(2_000, 0)), champion, holdout, cases(40, 4), "7")
    assert judgement.deciding == "weighted" and judgement.by_name()["weighted"].decides
    assert not judgement.gate.passed
    assert judgement.gate.reasons[0].startswith("FAIL: not better than champion v7 on the weighted holdout")
    better = judge(spec, champion, fit(spec, cases(30, 1)), holdout, holdout[:0])
    assert better.deciding == "weighted" and better.gate.passed


def test_an_adapted_model_is_judged_on_today_s_inputs_not_held_to_yesterday_s_gains(tmp_path):
    """A misspecified shift (the true log-odds are quadratic in x1, the model linear): the weighted fit gains
    on the weighted holdout what it gives up on the unweighted one. The least gain (roc_auc -0.01) is asked on
    the weighted rows; the fixed holdout keeps the declared thresholds as a floor."""
    from mlops_assets.data.training_set import IMPORTANCE

    def quadratic(n: int, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        x1, x2 = rng.normal(size=n), rng.normal(size=n)
        logit = 1.5 * (x1**2 - 1) + 0.5 * x2
        return pd.DataFrame({"x1": x1, "x2": x2, "y": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)})

    def toward_large_x1(frame: pd.DataFrame) -> np.ndarray:  # the density ratio of N(1, 1) over N(0, 1)
        ratio = np.exp(frame["x1"].to_numpy() - 0.5)
        return ratio / ratio.mean()

    spec = plain_spec(tmp_path, min_gain={"roc_auc": -0.01})
    train, holdout = quadratic(4_000, 0), quadratic(2_000, 1)
    champion = fit(spec, train)
    adapted = fit_pipeline_model(spec, train, LogisticRegression(), sample_weight=toward_large_x1(train))
    holdout[IMPORTANCE] = toward_large_x1(holdout)
    judgement = judge(spec, adapted, champion, holdout, holdout[:0], "3")
    weighted, fixed = judgement.by_name()["weighted"], judgement.by_name()["fixed"]
    assert weighted.decides and weighted.gains["roc_auc"][1] > 0.05  # confidently better on today's inputs
    assert fixed.gains["roc_auc"][0] < -0.01  # and worse on yesterday's by more than the least gain
    assert judgement.gate.passed, judgement.gate.reasons
    floor = plain_spec(
        tmp_path, min_gain={"roc_auc": -0.01}, thresholds={"roc_auc": fixed.challenger["roc_auc"] + 0.01}
    )
    refused = judge(floor, adapted, champion, holdout, holdout[:0], "3")
    assert not refused.gate.passed and any(r.startswith("fixed holdout: FAIL") for r in refused.gate.reasons)


def test_declared_conditions_add_to_the_default_rule(tmp_path):
    champion_rows, challenger_rows = cases(30, 1), cases(2_000, 0)
    for gate in ({"thresholds": {"roc_auc": 0.99}}, {"min_gain": {"roc_auc": 0.2}}):
        spec = plain_spec(tmp_path, **gate)
        judgement = judge(spec, fit(spec, challenger_rows), fit(spec, champion_rows), cases(1_000, 3), cases(500, 4))
        assert judgement.gate.reasons[0].startswith("ok: better than the champion")  # better, and yet
        assert not judgement.gate.passed and any(r.startswith("recent holdout: FAIL") for r in judgement.gate.reasons)


def test_a_first_model_meets_only_the_thresholds(tmp_path):
    spec = plain_spec(tmp_path, thresholds={"roc_auc": 0.8})
    judgement = judge(spec, fit(spec, cases(2_000, 0)), None, cases(1_000, 3), cases(500, 4))
    assert judgement.gate.passed and judgement.deciding == "recent"
    assert judgement.gate.reasons == [
        f"recent holdout: ok: roc_auc {judgement.by_name()['recent'].challenger['roc_auc']:.4f} ≥ 0.8"
    ]
    weak = plain_spec(tmp_path, thresholds={"roc_auc": 0.99})
    assert not judge(weak, fit(weak, cases(2_000, 0)), None, cases(1_000, 3), cases(500, 4)).gate.passed


def test_an_operator_can_promote_any_passing_challenger(tmp_path):
    spec = plain_spec(tmp_path, must_beat_champion=False)
    champion = fit(spec, cases(2_000, 0))
    judgement = judge(spec, fit(spec, cases(2_000, 0)), champion, cases(1_000, 3), cases(500, 4))
    assert judgement.gate.passed and judgement.gate.reasons == []


def test_a_run_a_person_started_is_judged_by_the_declared_conditions_alone(tmp_path):
    """The loop's own retrainings must beat the champion; a person who materializes a retraining decided to."""
    spec = plain_spec(tmp_path, thresholds={"roc_auc": 0.6})
    champion, copy = fit(spec, cases(2_000, 0)), fit(spec, cases(2_000, 0))
    assert not judge(spec, copy, champion, cases(1_000, 3), cases(500, 4), automatic=True).gate.passed
    by_a_person = judge(spec, copy, champion, cases(1_000, 3), cases(500, 4), automatic=False)
    assert by_a_person.gate.passed and by_a_person.gate.reasons
    assert not any("not better" in reason for reason in by_a_person.gate.reasons)
    assert any("roc_auc" in reason and "≥ 0.6" in reason for reason in by_a_person.gate.reasons)


def test_label_noise_on_today_s_data_keeps_the_fixed_holdout_guarding(tmp_path):
    spec = plain_spec(tmp_path)
    champion, challenger = fit(spec, cases(2_000, 0)), fit(spec, cases(300, 5, noise=0.3))
    noisy = cases(500, 4, noise=0.1)  # the same concept, a tenth of its labels flipped
    judgement = judge(spec, challenger, champion, cases(1_000, 3), noisy)
    assert not judgement.concept["changed"] and judgement.by_name()["fixed"].note.startswith("the concept holds")
    assert any(r.startswith("fixed holdout: FAIL: confidently worse") for r in judgement.gate.reasons)
    assert not judgement.gate.passed


def test_a_concept_flip_on_today_s_data_stops_the_fixed_holdout_guarding(tmp_path):
    spec = plain_spec(tmp_path)
    champion, challenger = fit(spec, cases(2_000, 0)), fit(spec, cases(2_000, 1, flipped=True))
    judgement = judge(spec, challenger, champion, cases(1_000, 3), cases(500, 4, flipped=True))
    assert judgement.concept["changed"] and judgement.by_name()["fixed"].note.startswith("the concept changed")
    assert judgement.by_name()["fixed"].gains["roc_auc"][2] < 0  # far worse on the old concept, and yet
    assert judgement.gate.passed
