"""The training set after a concept change: production rows outweigh the old source, label noise changes nothing."""

import numpy as np
import pandas as pd
import pytest

from mlops_assets.data.training_set import CHANGED_SOURCE_SHARE, assemble
from mlops_assets.data.training_window import LOGGED_AT, ORIGIN, WEIGHT
from mlops_assets.spec import PipelineSpec

SPEC = {
    "name": "credit",
    "task": "binary",
    "target": "defaulted",
    "id_column": "case_id",
    "source": {"path": "train.csv", "labels": {"path": "labels", "id_column": "case_id"}},
    "schema": {
        "columns": {
            "case_id": {"dtype": "str"},
            "x1": {"dtype": "float"},
            "x2": {"dtype": "float"},
            "defaulted": {"dtype": "int", "isin": [0, 1]},
        }
    },
    "model": {"estimator": "sklearn.linear_model.LogisticRegression"},
}
NOW = 1_700_000_000_000


def cases(rows: int, first_id: int, seed: int, flipped: bool = False, noise: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    y = ((-x1 if flipped else x1) + 0.5 * x2 + rng.normal(scale=0.5, size=rows) > 0).astype(int)
    y = np.where(rng.random(rows) < noise, 1 - y, y)
    ids = [f"C{i:06d}" for i in range(first_id, first_id + rows)]
    return pd.DataFrame({"case_id": ids, "x1": x1, "x2": x2, "defaulted": y})


def served(frame: pd.DataFrame) -> pd.DataFrame:
    """Labelled production rows: as served, one a second."""
    return frame.assign(**{LOGGED_AT: NOW - 1_000 * np.arange(len(frame))[::-1]})


def spec_of(tmp_path, **window):
    (tmp_path / "train.csv").write_text("case_id,x1,x2,defaulted\n")
    (tmp_path / "labels").mkdir(exist_ok=True)
    raw = {**SPEC, "training": {"window": window}} if window else SPEC
    return PipelineSpec.model_validate(raw, context={"base_dir": tmp_path})


def totals(train: pd.DataFrame) -> dict[str, float]:
    return train.groupby(ORIGIN)[WEIGHT].sum().to_dict()


def test_after_a_concept_flip_the_production_rows_outweigh_the_source(tmp_path):
    spec = spec_of(tmp_path)
    training = assemble(spec, cases(8_000, 0, 0), served(cases(7_000, 100_000, 1, flipped=True)))
    weight = totals(training.train)
    assert weight["source"] == pytest.approx(CHANGED_SOURCE_SHARE * weight["production"])
    assert training.concept_change["changed"] and training.concept_change["metric"] == "roc_auc"
    assert len(training.notes) == 1 and training.notes[0].startswith("the concept changed")
    assert training.origins()["source"] > training.origins()["production"]  # fewer rows, and yet they decide


def test_a_model_trained_on_the_default_training_set_learns_the_new_concept(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    source, production = cases(10_000, 0, 0), served(cases(5_000, 100_000, 1, flipped=True))
    today = cases(5_000, 900_000, 2, flipped=True)

    def auc(train):
        model = LogisticRegression().fit(train[["x1", "x2"]], train["defaulted"], sample_weight=train[WEIGHT])
        return roc_auc_score(today["defaulted"], model.predict_proba(today[["x1", "x2"]])[:, 1])

    kept = assemble(spec_of(tmp_path, source_weight=1.0), source, production)  # the weights before the change
    assert auc(kept.train) < 0.5  # the source's old concept outvotes production's
    assert auc(assemble(spec_of(tmp_path), source, production).train) > 0.8


def test_label_noise_leaves_the_weights_as_the_window_gives_them(tmp_path):
    spec = spec_of(tmp_path)
    training = assemble(spec, cases(8_000, 0, 0), served(cases(7_000, 100_000, 1, noise=0.1)))
    assert (training.train[WEIGHT] == 1.0).all()
    assert not training.concept_change["changed"] and training.notes == []


def test_a_source_weight_the_spec_sets_is_kept_after_a_change(tmp_path):
    spec = spec_of(tmp_path, source_weight=0.5)
    training = assemble(spec, cases(8_000, 0, 0), served(cases(7_000, 100_000, 1, flipped=True)))
    source = training.train[training.train[ORIGIN] == "source"]
    assert (source[WEIGHT] == 0.5).all() and training.concept_change["changed"]
    assert training.notes[0].endswith("training.window.source_weight 0.5 is the spec's: kept")


def test_without_production_rows_there_is_no_concept_test(tmp_path):
    spec = spec_of(tmp_path)
    source = cases(2_000, 0, 0)
    empty = served(source[:0])
    training = assemble(spec, source, empty)
    assert training.concept_change is None and (training.train[WEIGHT] == 1.0).all()
