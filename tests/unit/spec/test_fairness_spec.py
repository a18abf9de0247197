from pathlib import Path

import pytest
import yaml

from mlops_assets.spec import load_spec
from tests.unit.spec.test_pipeline import problems


def variant(pipelines: Path, name: str, **evaluation) -> Path:
    raw = yaml.safe_load((pipelines / f"{name}.yaml").read_text())
    raw.setdefault("evaluation", {}).update(evaluation)
    if name == "breast_cancer":  # a site column, kept out of the model
        raw["schema"]["columns"]["site"] = {"dtype": "str", "nullable": True}
        raw["features"]["exclude"] = ["site"]
    path = pipelines / "variant.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_slices_fairness_and_card_load_and_default_to_nothing(pipelines):
    spec = load_spec(
        variant(
            pipelines,
            "diabetes",
            slices=["sex"],
            fairness={"sensitive": ["sex"], "limits": {"error_gap": 5.0}},
            card={"intended_use": "research", "limitations": "small sample"},
        )
    )
    assert spec.evaluation.slices == ["sex"] and spec.evaluation.fairness.limits.declared() == {"error_gap": 5.0}
    assert spec.evaluation.card.intended_use == "research"
    plain = load_spec(pipelines / "diabetes.yaml")
    assert plain.evaluation.slices == [] and plain.evaluation.fairness.limits.declared() == {}


def test_the_new_sections_at_their_defaults_leave_the_spec_hash_unchanged(pipelines):
    original = load_spec(pipelines / "diabetes.yaml").spec_hash
    assert load_spec(variant(pipelines, "diabetes", slices=[], card={})).spec_hash == original
    assert load_spec(variant(pipelines, "diabetes", slices=["sex"])).spec_hash != original


def test_a_slice_column_must_be_a_schema_column(pipelines):
    message = problems(variant(pipelines, "diabetes", slices=["sex", "gender"]))
    assert "evaluation.slices.1: 'gender' is not a schema column" in message
    assert "['sex']" in message  # the allowed columns


def test_a_float_column_cannot_be_sliced_or_sensitive(pipelines):
    message = problems(variant(pipelines, "diabetes", fairness={"sensitive": ["age"]}))
    assert "evaluation.fairness.sensitive.0: 'age' is a float column (a group per value)" in message


def test_the_target_is_not_a_sensitive_column(pipelines):
    message = problems(variant(pipelines, "breast_cancer", fairness={"sensitive": ["diagnosis"]}))
    assert "evaluation.fairness.sensitive.0: 'diagnosis' is the target" in message
    assert "other than the target and the id column: ['site']" in message


def test_a_sensitive_column_may_be_kept_out_of_the_model(pipelines):
    spec = load_spec(variant(pipelines, "breast_cancer", fairness={"sensitive": ["site"]}))
    assert "site" not in spec.input_columns and spec.evaluation.fairness.sensitive == ["site"]


@pytest.mark.parametrize(
    ("name", "limits", "allowed"),
    [
        ("diabetes", {"demographic_parity_difference": 0.1}, "['error_gap']"),
        ("breast_cancer", {"error_gap": 3.0}, "['demographic_parity_difference', 'equalized_odds_difference']"),
    ],
)
def test_limits_must_fit_the_task(pipelines, name, limits, allowed):
    sensitive = "sex" if name == "diabetes" else "site"
    message = problems(variant(pipelines, name, fairness={"sensitive": [sensitive], "limits": limits}))
    assert "evaluation.fairness.limits" in message and f"allowed: {allowed}" in message


def test_limits_need_sensitive_columns(pipelines):
    message = problems(variant(pipelines, "diabetes", fairness={"limits": {"error_gap": 3.0}}))
    assert "evaluation.fairness.sensitive: limits ['error_gap'] need sensitive columns" in message


def test_unknown_limits_and_out_of_range_limits_are_errors(pipelines):
    message = problems(
        variant(pipelines, "wine", fairness={"limits": {"parity": 0.1, "equalized_odds_difference": 1.5}})
    )
    assert "evaluation.fairness.limits: unknown field(s) 'parity'" in message
    assert "evaluation.fairness.limits.equalized_odds_difference: Input should be less than or equal to 1" in message
