"""The loop learns from production: labels that arrive after the traffic train the next version, which is
judged on today's data. A synthetic pipeline with an integer target and ids of its own, so production rows
are new cases, not copies of the training data."""

import time

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import yaml

from mlops_assets.naming import RETRAIN_TAG, TRIGGER_TAG, DriftStatus
from mlops_assets.resources import local_resources
from mlops_assets.serving.traffic import send_rows
from tests.conftest import Project, check, failures, metadata
from tests.integration.test_loop import Loop

SPEC = {
    "name": "credit",
    "task": "binary",
    "target": "defaulted",
    "id_column": "case_id",
    "source": {"path": "data/credit/train.csv", "labels": {"path": "data/credit/labels", "id_column": "case_id"}},
    "schema": {
        "columns": {
            "case_id": {"dtype": "str"},
            "x1": {"dtype": "float"},
            "x2": {"dtype": "float"},
            "defaulted": {"dtype": "int", "isin": [0, 1]},
        }
    },
    "model": {"estimator": "sklearn.linear_model.LogisticRegression"},
    "evaluation": {"metrics": ["roc_auc", "accuracy"], "gate": {"min_gain": {"roc_auc": -0.01}}},
    "monitoring": {"window": 600, "min_rows": 100},
    "retraining": {"cooldown_minutes": 0},
    "training": {"window": {"policy": "all", "source_weight": 0.1}, "recent_holdout": {"min_rows": 80}},
}


def cases(rng, rows: int, first_id: int, flipped: bool = False) -> pd.DataFrame:
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    signal = (-x1 if flipped else x1) + 0.5 * x2 + rng.normal(scale=0.5, size=rows)
    ids = [f"C{i:06d}" for i in range(first_id, first_id + rows)]
    return pd.DataFrame({"case_id": ids, "x1": x1, "x2": x2, "defaulted": (signal > 0).astype(int)})


@pytest.fixture
def credit(pipelines, layout, tmp_path):
    folder = pipelines / "data" / "credit"
    (folder / "labels").mkdir(parents=True)
    cases(np.random.default_rng(0), 1_500, 0).to_csv(folder / "train.csv", index=False)
    (pipelines / "credit.yaml").write_text(yaml.safe_dump(SPEC))
    (tmp_path / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as instance:
        project = Project(pipelines, layout, instance)
        loop = Loop(project, "credit")
        loop.deploy()
        yield loop


def test_labels_after_a_concept_change_retrain_on_production_rows_judged_on_the_recent_holdout(credit):
    rng = np.random.default_rng(1)
    production = cases(rng, 600, 100_000, flipped=True)
    credit.driver.tick("credit_labels_sensor")  # the first tick records the (empty) labels folder
    send_frame(credit, production)
    (report,) = credit.tick("drift_sensor").run_requests
    drift = metadata(credit.launch(report), "credit", "drift_report")
    # the inputs did not move, and an integer class meets its logged text form: nothing drifted
    assert drift["status"] == DriftStatus.no_drift and drift["drifted_features"] == []

    labels = credit.project.pipelines / "data" / "credit" / "labels" / "batch-0001.csv"
    production[["case_id", "defaulted"]].to_csv(labels, index=False)
    report, retrain = credit.tick("labels_sensor").run_requests
    assert retrain.tags[TRIGGER_TAG].startswith("label_batch:")
    result = credit.launch(retrain, "labels_sensor")
    assert result.success, failures(result)
    features = metadata(result, "credit", "validated_features")
    assert features["training_rows_by_origin"]["production"] > 400
    assert 80 <= features["recent_holdout_rows"] < 200
    evaluation = metadata(result, "credit", "evaluation_report")
    assert "| recent |" in evaluation["holdouts"] and "the concept changed" in evaluation["holdouts"]
    assert check(result, "credit", "evaluation_report", "gate").passed

    fresh = cases(np.random.default_rng(2), 2_000, 200_000, flipped=True)
    registry = local_resources(credit.project.layout).registry
    old, new = (registry.load("credit", v).evaluate(fresh, "defaulted", ["roc_auc"])["roc_auc"] for v in "12")
    assert old < 0.5 < 0.8 < new  # the champion learnt the old concept; production taught the new one
    assert metadata(result, "credit", "deployed_endpoint")["model_version"] == "2"


def test_too_few_recent_rows_are_reported_not_decided_on(credit):
    production = cases(np.random.default_rng(3), 150, 100_000, flipped=True)
    send_frame(credit, production)
    production[["case_id", "defaulted"]].to_csv(
        credit.project.pipelines / "data" / "credit" / "labels" / "batch-0001.csv", index=False
    )
    names = ("raw_data", "feedback", "validated_features", "trained_model", "evaluation_report")
    result = credit.project.materialize("credit", *names)
    holdouts = metadata(result, "credit", "evaluation_report")["holdouts"]
    assert "fewer than training.recent_holdout.min_rows (80): reported, not deciding" in holdouts
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[2] for line in holdouts.splitlines()[2:4]}
    assert rows == {"fixed": "yes", "recent": "no"}  # the fixed holdout decides: noise does not
    assert not check(result, "credit", "evaluation_report", "gate").passed  # and the confused challenger stays out


def test_a_labels_source_with_no_label_at_all_stops_early_and_says_why(pipelines, layout, tmp_path):
    folder = pipelines / "data" / "credit"
    (folder / "labels").mkdir(parents=True)
    cases(np.random.default_rng(0), 200, 0).drop(columns=["defaulted"]).to_csv(folder / "train.csv", index=False)
    (pipelines / "credit.yaml").write_text(yaml.safe_dump(SPEC))
    (tmp_path / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as instance:
        result = Project(pipelines, layout, instance).materialize(
            "credit", "raw_data", "feedback", "validated_features"
        )
    assert not result.success
    assert "nothing to train on" in failures(result) and "add a label batch" in failures(result)


def send_frame(loop: Loop, frame: pd.DataFrame) -> None:
    """Serve ``frame``'s rows (inputs and ids) through the endpoint and wait until they are logged."""
    before = loop.logged_rows()
    send_rows(loop.url, frame[["case_id", "x1", "x2"]], batch=100)
    deadline = time.monotonic() + 30
    while loop.logged_rows() < before + len(frame):
        assert time.monotonic() < deadline, "the endpoint did not log the traffic"
        time.sleep(0.1)


def test_feedback_is_named_by_its_rows_and_changes_only_when_production_taught_something(credit):
    first = metadata(credit.project.materialize("credit", "feedback"), "credit", "feedback")
    assert first["labelled_production_rows"] == 0
    production = cases(np.random.default_rng(4), 120, 100_000)
    send_frame(credit, production)
    unchanged = metadata(credit.project.materialize("credit", "feedback"), "credit", "feedback")
    assert unchanged["content_hash"] == first["content_hash"]  # served rows without labels teach nothing yet
    labels = credit.project.pipelines / "data" / "credit" / "labels"
    production[["case_id", "defaulted"]].iloc[:100].to_csv(labels / "batch-0001.csv", index=False)
    taught = metadata(credit.project.materialize("credit", "feedback"), "credit", "feedback")
    assert taught["labelled_production_rows"] == 100 and taught["content_hash"] != first["content_hash"]
    rows = pd.read_parquet(taught["feedback"])
    expected = production.iloc[:100].sort_values("case_id").reset_index(drop=True)
    assert rows.sort_values("case_id")["defaulted"].tolist() == expected["defaulted"].tolist()
    assert np.allclose(rows.sort_values("case_id")["x1"], expected["x1"])  # the features as served


def test_labels_for_holdout_ids_alone_judge_but_never_train_and_start_no_copy(credit):
    from mlops_assets.data.training_window import holdout_mask

    production = cases(np.random.default_rng(5), 300, 100_000)
    send_frame(credit, production)
    held = production[holdout_mask(production["case_id"], credit.spec.split.holdout, credit.spec.split.seed)]
    held[["case_id", "defaulted"]].to_csv(
        credit.project.pipelines / "data" / "credit" / "labels" / "batch-0001.csv", index=False
    )
    names = ("raw_data", "feedback", "validated_features", "trained_model")
    result = credit.project.materialize("credit", *names, tags={RETRAIN_TAG: "true", TRIGGER_TAG: "test"})
    features = metadata(result, "credit", "validated_features")
    assert features["recent_holdout_rows"] == len(held) > 0  # they judge the next version...
    assert "production" not in features["training_rows_by_origin"]  # ...and never train one
    assert not result.asset_materializations_for_node("credit__trained_model")  # the rows are v1's: no copy
