from pathlib import Path

import pytest
import yaml

from mlops_assets.errors import SpecError
from mlops_assets.spec import load_spec, load_specs
from mlops_assets.spec.estimators import ALLOWED_MODULES_ENV

REPO = Path(__file__).resolve().parents[3]


def write_variant(pipelines: Path, edit) -> Path:
    raw = yaml.safe_load((pipelines / "breast_cancer.yaml").read_text())
    edit(raw)
    path = pipelines / "variant.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def problems(path: Path) -> str:
    with pytest.raises(SpecError) as error:
        load_spec(path)
    message = str(error.value)
    assert str(path) in message
    return message


def test_bundled_specs_load_with_three_tasks():
    specs = {spec.name: spec for spec, _ in load_specs(REPO / "pipelines")}
    assert {s.task for s in specs.values()} == {"binary", "multiclass", "regression"}
    breast = specs["breast_cancer"]
    assert "patient_id" not in breast.feature_columns and "diagnosis" not in breast.feature_columns
    assert breast.feature_columns[-1] == "area_growth"
    assert breast.primary_metric == "roc_auc"


def test_unknown_field_names_the_field_and_what_is_allowed(pipelines):
    path = write_variant(pipelines, lambda raw: raw["monitoring"].update(colour="red"))
    message = problems(path)
    assert "monitoring: unknown field(s) 'colour'" in message
    assert "allowed: window, min_rows" in message


def test_unknown_fields_are_reported_with_every_other_problem_of_the_spec(pipelines):
    def edit(raw):
        raw.update(colour="red", task="binery")
        raw["monitoring"].update(size=3, window="many")
        raw["schema"]["columns"]["mean_radius"].update(maximum=50)
        del raw["target"]

    message = problems(write_variant(pipelines, edit))
    assert "(top level): unknown field(s) 'colour'; allowed: name, description, task" in message
    assert "monitoring: unknown field(s) 'size'; allowed: window, min_rows" in message
    assert "schema.columns.mean_radius: unknown field(s) 'maximum'; allowed: dtype, nullable" in message
    assert "task: Input should be 'binary'" in message
    assert "monitoring.window: Input should be a valid integer" in message
    assert "target: required field is missing" in message


def test_wrong_type_names_the_field_path(pipelines):
    path = write_variant(pipelines, lambda raw: raw["monitoring"].update(window="many"))
    assert "monitoring.window: Input should be a valid integer" in problems(path)


def test_wrong_choice_lists_the_allowed_values(pipelines):
    path = write_variant(pipelines, lambda raw: raw.update(task="binery"))
    assert "task: Input should be 'binary', 'multiclass' or 'regression'" in problems(path)


def test_missing_file_and_unknown_estimator_are_reported_together(pipelines):
    def edit(raw):
        raw["source"]["path"] = "data/nope.csv"
        raw["model"]["estimator"] = "sklearn.linear_model.LogisticRegresion"

    message = problems(write_variant(pipelines, edit))
    assert "source.path: no file matches 'data/nope.csv'" in message
    assert "model.estimator: 'sklearn.linear_model' defines no 'LogisticRegresion'" in message


def test_estimator_in_a_missing_module(pipelines, monkeypatch):
    monkeypatch.setenv(ALLOWED_MODULES_ENV, "nosuchpkg")
    path = write_variant(pipelines, lambda raw: raw["model"].update(estimator="nosuchpkg.Model"))
    assert "module 'nosuchpkg' of 'nosuchpkg.Model' is not installed" in problems(path)


def test_cross_field_problems(pipelines):
    assert "target 'outcome' is not a schema column" in problems(
        write_variant(pipelines, lambda raw: raw.update(target="outcome"))
    )
    assert "not available for task 'binary'" in problems(
        write_variant(pipelines, lambda raw: raw["evaluation"]["gate"]["thresholds"].update(rmse=3))
    )


def test_derived_expressions_cannot_run_code(pipelines):
    path = write_variant(pipelines, lambda raw: raw["features"]["derived"].update(x="__import__('os').getcwd()"))
    assert "features.derived.x" in problems(path)


def test_string_feature_without_encoding_is_rejected(pipelines):
    raw = yaml.safe_load((pipelines / "diabetes.yaml").read_text())
    raw["features"]["transforms"] = [{"kind": "standard", "columns": ["bmi"]}]
    path = pipelines / "variant.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert "feature 'sex' is a string: give it an onehot or ordinal transform" in problems(path)


def test_spec_hash_changes_with_the_spec(pipelines):
    original = load_spec(pipelines / "breast_cancer.yaml")
    changed = load_spec(write_variant(pipelines, lambda raw: raw["model"]["params"].update(C=2.0)))
    assert original.spec_hash != changed.spec_hash
    assert original.spec_hash == load_spec(pipelines / "breast_cancer.yaml").spec_hash


def test_a_field_added_at_its_default_leaves_the_spec_hash(pipelines):
    """A release that adds a spec field must not change the hash of every spec trained before it, or
    `reproduce` refuses all of them (the features.views and deployment.workers fields did, when the
    hash covered the defaults)."""
    original = load_spec(pipelines / "breast_cancer.yaml")

    class Later(type(original)):
        added_later: int = 0

    later = Later.model_validate(original.model_dump(by_alias=True))
    assert later.spec_hash == original.spec_hash
    assert (
        Later.model_validate({**original.model_dump(by_alias=True), "added_later": 1}).spec_hash != original.spec_hash
    )
