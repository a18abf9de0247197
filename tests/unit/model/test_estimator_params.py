"""An estimator's parameters are checked before training: their names (and the required ones) when the spec
loads, read from the source; their values by ``build_estimator`` against scikit-learn's own constraints, which
``mlops-assets validate`` runs. Only public scikit-learn modules: no test suite, no private module."""

import inspect
import re
import sys
from pathlib import Path

import pytest
import yaml

from mlops_assets.errors import SpecError
from mlops_assets.model.estimators import build_estimator
from mlops_assets.spec import load_spec
from mlops_assets.spec.estimators import ALLOWED_MODULES_ENV, init_parameters, locate, params_problems
from tests.unit.model.test_estimators import public_path


def with_model(pipelines: Path, model: dict) -> Path:
    raw = yaml.safe_load((pipelines / "breast_cancer.yaml").read_text())
    path = pipelines / "variant.yaml"
    path.write_text(yaml.safe_dump({**raw, "model": model}))
    return path


def spec_error(path: Path) -> str:
    with pytest.raises(SpecError) as error:
        load_spec(path)
    assert str(path) in str(error.value)
    return str(error.value)


def test_the_parameters_read_from_source_are_those_of_every_estimators_signature():
    from sklearn.utils import all_estimators

    for _, cls in all_estimators():
        signature = inspect.signature(cls).parameters
        required = [name for name, p in signature.items() if p.default is inspect.Parameter.empty]
        assert init_parameters(public_path(cls)) == (list(signature), required), public_path(cls)


@pytest.mark.parametrize("model", [{"params": {}}, {}])
def test_an_estimator_missing_a_required_parameter_is_refused_at_load(pipelines, model):
    message = spec_error(with_model(pipelines, {"estimator": "sklearn.pipeline.Pipeline", **model}))
    assert "model.params: sklearn.pipeline.Pipeline requires 'steps': give it under params" in message


def test_an_unknown_parameter_is_refused_at_load_naming_the_ones_it_has(pipelines):
    model = {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"C": 1.0, "n_trees": 3}}
    message = spec_error(with_model(pipelines, model))
    assert "model.params: ['n_trees'] not accepted by sklearn.linear_model.LogisticRegression" in message
    assert "; allowed: penalty, " in message


@pytest.mark.parametrize(
    ("params", "field", "said"),
    [
        ({"n_estimators": "many"}, "model.params.n_estimators", "must be an int in the range [1, inf)"),
        ({"n_estimators": 0}, "model.params.n_estimators", "must be an int in the range [1, inf)"),
        ({"criterion": "best"}, "model.params.criterion", "must be a str among"),
        ({"max_features": [1, 2]}, "model.params.max_features", "Got [1, 2] instead"),
    ],
)
def test_a_value_the_estimator_refuses_is_a_spec_error_before_training(pipelines, params, field, said):
    path = with_model(pipelines, {"estimator": "sklearn.ensemble.RandomForestClassifier", "params": params})
    load_spec(path)  # the names are right: the values are the estimator's to judge
    with pytest.raises(SpecError, match=re.escape(f"{field}: The '{field.rsplit('.', 1)[1]}' parameter of")) as e:
        build_estimator("sklearn.ensemble.RandomForestClassifier", params, str(path))
    assert said in str(e.value)


def test_values_the_estimator_allows_build_it():
    model = build_estimator("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 5}, "spec.yaml")
    assert model.n_estimators == 5


@pytest.mark.parametrize(
    ("estimator", "refusal"),
    [
        ("sklearn.utils.tests.test_estimator_checks.BaseBadClassifier", "is in a test module (tests)"),
        ("sklearn.ensemble.tests.test_forest.RandomForestClassifier", "is in a test module (tests)"),
        ("sklearn.utils._mocking.CheckingClassifier", "is in a private module (_mocking)"),
        (
            "sklearn.linear_model._ridge.Ridge",
            "is in a private module (_ridge); name the class where it is public (e.g. 'sklearn.linear_model.Ridge')",
        ),
    ],
)
def test_classes_of_the_test_suite_or_a_private_module_are_refused(pipelines, estimator, refusal):
    assert f"model.estimator: {estimator!r} {refusal}" in spec_error(with_model(pipelines, {"estimator": estimator}))
    with pytest.raises(SpecError, match=re.escape(refusal)):
        build_estimator(estimator, {}, "spec.yaml")


def test_a_private_module_the_operator_lists_is_trusted(monkeypatch):
    monkeypatch.setenv(ALLOWED_MODULES_ENV, "sklearn.utils._mocking")
    locate("sklearn.utils._mocking.CheckingClassifier")
    with pytest.raises(ValueError, match="is in a test module"):
        locate("sklearn.utils.tests.test_estimator_checks.BaseBadClassifier")


def test_a_dataclass_whose_init_the_source_does_not_show_is_left_to_build_estimator(tmp_path, monkeypatch):
    """A dataclass's ``__init__`` is written when the class is made: the source check says nothing of it."""
    (tmp_path / "house_dataclasses.py").write_text(
        "from dataclasses import dataclass\n\n"
        "@dataclass\nclass Stump:\n    depth: int = 1\n"
        "    def fit(self, X, y):\n        return self\n"
        "    def predict(self, X):\n        return X\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(ALLOWED_MODULES_ENV, "house_dataclasses")
    try:
        assert init_parameters("house_dataclasses.Stump") is None
        assert params_problems("house_dataclasses.Stump", {"depth": 3}) == []
        assert build_estimator("house_dataclasses.Stump", {"depth": 3}, "spec.yaml").depth == 3
        with pytest.raises(SpecError, match=re.escape("model.params: ['width'] not accepted by house_dataclasses")):
            build_estimator("house_dataclasses.Stump", {"width": 3}, "spec.yaml")
    finally:
        sys.modules.pop("house_dataclasses", None)
