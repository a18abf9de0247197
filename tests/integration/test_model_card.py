"""The model card and the fairness gate for real: diabetes with `sex` as its sensitive column and slice."""

from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from mlflow import MlflowClient

from mlops_assets.data.locations import EVALUATION_FOLDER
from tests.conftest import check, failures, metadata

EVALUATED = ("raw_data", "validated_features", "trained_model", "evaluation_report")


def declare_fairness(project, error_gap: float):
    path = project.pipelines / "diabetes.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["evaluation"].update(
        slices=["sex"],
        fairness={"sensitive": ["sex"], "limits": {"error_gap": error_gap}},
        card={"intended_use": "Research on disease progression.", "limitations": "442 patients, one clinic."},
    )
    path.write_text(yaml.safe_dump(raw))


def client(project) -> MlflowClient:
    return MlflowClient(tracking_uri=project.layout.tracking_uri, registry_uri=project.layout.tracking_uri)


def test_the_card_shows_slices_fairness_and_importance_in_the_ui_and_in_mlflow(project):
    declare_fairness(project, error_gap=1000.0)
    result = project.materialize("diabetes", *EVALUATED)
    assert result.success, failures(result)
    gate = check(result, "diabetes", "evaluation_report", "gate")
    assert gate.passed and "ok: error_gap on 'sex'" in gate.metadata["conditions"].value
    assert gate.metadata["limit_error_gap"].value == "1000" and gate.metadata["observed_error_gap_sex"].value >= 0

    card = metadata(result, "diabetes", "evaluation_report")["model_card"]
    for heading in ("Intended use", "Limitations", "Data", "Slices by `sex`", "Fairness", "Permutation importance"):
        assert f"## {heading}" in card, heading
    assert "Research on disease progression." in card and "| sex | error_gap |" in card
    assert "| 1 | " in card and "| 2 | " in card  # a row per group of the slice table
    assert "- Approval: not yet approved" in card
    assert f"Dagster run `{result.run_id}`" in card and "- Seed: " in card  # the version's provenance tags

    run_id = client(project).get_model_version("diabetes", "1").run_id
    page = Path(client(project).download_artifacts(run_id, f"{EVALUATION_FOLDER}/model_card.html")).read_text()
    assert "<h2>Fairness (challenger, fixed holdout)</h2>" in page and "<h2>Slices by <code>sex</code>" in page
    assert "<td>sex</td><td>error_gap</td>" in page


def test_a_challenger_over_a_fairness_limit_fails_the_gate_and_the_champion_stays(project):
    declare_fairness(project, error_gap=1000.0)
    first = project.materialize("diabetes", *EVALUATED)
    assert first.success, failures(first)
    client(project).set_registered_model_alias("diabetes", "champion", "1")

    declare_fairness(project, error_gap=0.001)
    result = project.materialize("diabetes", "trained_model", "evaluation_report", "deployed_endpoint")
    gate = check(result, "diabetes", "evaluation_report", "gate")
    conditions = gate.metadata["conditions"].value
    assert not gate.passed and "FAIL: error_gap on 'sex'" in conditions and "≤ 0.001" in conditions
    assert "1: mae " in conditions and "2: mae " in conditions  # each group's figure
    assert not result.asset_materializations_for_node("diabetes__deployed_endpoint")
    assert str(client(project).get_model_version_by_alias("diabetes", "champion").version) == "1"
    assert client(project).get_model_version("diabetes", "2").tags["gate"] == "failed"
    assert "## Gate: FAILED" in metadata(result, "diabetes", "evaluation_report")["model_card"]


def test_a_sensitive_column_kept_out_of_the_model_is_judged_on_the_holdout(project):
    data = project.pipelines / "data" / "breast_cancer" / "features.csv"
    frame = pd.read_csv(data)
    frame["site"] = np.where(np.arange(len(frame)) % 3 == 0, "north", "south")
    frame.to_csv(data, index=False)
    path = project.pipelines / "breast_cancer.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["schema"]["columns"]["site"] = {"dtype": "str", "isin": ["north", "south"]}
    raw["features"]["exclude"] = ["site"]
    raw["evaluation"].update(
        slices=["site"],
        fairness={"sensitive": ["site"], "limits": {"demographic_parity_difference": 1.0}},
    )
    path.write_text(yaml.safe_dump(raw))

    result = project.materialize("breast_cancer", "raw_data", "feedback", *EVALUATED[1:])
    assert result.success, failures(result)
    gate = check(result, "breast_cancer", "evaluation_report", "gate")
    assert gate.passed and "ok: demographic_parity_difference on 'site'" in gate.metadata["conditions"].value
    card = metadata(result, "breast_cancer", "evaluation_report")["model_card"]
    assert "| site | demographic_parity_difference (positive class malignant) |" in card
    assert "| site | equalized_odds_difference (positive class malignant) |" in card
    assert "## Slices by `site`" in card and "| north | " in card
    assert "| site |" not in card.split("## Permutation importance")[1]  # not a model input
