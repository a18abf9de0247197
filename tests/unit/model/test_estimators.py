"""A spec names its estimator by import path: only estimator classes of allowed modules are imported or built."""

import re
import sys
from pathlib import Path

import pytest
import yaml

from mlops_assets.errors import SpecError
from mlops_assets.model.estimators import build_estimator
from mlops_assets.spec import load_spec
from mlops_assets.spec.estimators import ALLOWED_MODULES_ENV, locate


def with_estimator(pipelines: Path, estimator: str, params: dict | None = None) -> Path:
    raw = yaml.safe_load((pipelines / "breast_cancer.yaml").read_text())
    raw["model"] = {"estimator": estimator, "params": params or {}}
    path = pipelines / "variant.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("estimator", ["subprocess.Popen", "builtins.eval", "os.system", "sklearn_evil.Model"])
def test_a_class_outside_the_allowed_modules_is_a_spec_error_naming_the_field_file_and_allowed_modules(
    pipelines, estimator
):
    path = with_estimator(pipelines, estimator)
    with pytest.raises(SpecError) as error:
        load_spec(path)
    message = str(error.value)
    assert str(path) in message
    assert f"model.estimator: {estimator!r} is not in an allowed module (allowed: sklearn)" in message
    assert ALLOWED_MODULES_ENV in message


def test_building_checks_the_class_before_importing_or_instantiating_it(tmp_path):
    """``build_estimator`` is the last gate before a class is called, whatever loaded the spec."""
    witness = tmp_path / "witness"
    with pytest.raises(SpecError, match=re.escape("model.estimator: 'subprocess.Popen' is not in an allowed module")):
        build_estimator("subprocess.Popen", {"args": ["touch", str(witness)]}, "spec.yaml")
    assert not witness.exists()
    with pytest.raises(SpecError, match="is not an estimator class with fit and predict"):
        build_estimator("sklearn.preprocessing.StandardScaler", {}, "spec.yaml")


@pytest.mark.parametrize(
    ("estimator", "problem"),
    [
        ("sklearn.preprocessing.StandardScaler", "is not an estimator: it has no predict"),
        ("sklearn.linear_model.lasso_path", "is a function, not an estimator class"),
        ("sklearn.utils.Bunch", "is not an estimator: it has no fit or predict"),
        ("sklearn.linear_model._base", "is a module, not an estimator class"),
    ],
)
def test_what_is_not_an_estimator_class_is_refused_at_load(pipelines, estimator, problem):
    with pytest.raises(SpecError, match=re.escape(f"model.estimator: '{estimator}' {problem}")):
        load_spec(with_estimator(pipelines, estimator))


def test_other_modules_are_trusted_only_when_the_environment_lists_them(tmp_path, monkeypatch):
    (tmp_path / "house_models.py").write_text(
        "class Stump:\n"
        "    def __init__(self, depth=1):\n        self.depth = depth\n"
        "    def fit(self, X, y):\n        return self\n"
        "    def predict(self, X):\n        return X\n\n"
        "class Helper:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="not in an allowed module"):
        locate("house_models.Stump")
    monkeypatch.setenv(ALLOWED_MODULES_ENV, " lightgbm , house_models")
    try:
        locate("house_models.Stump")
        assert build_estimator("house_models.Stump", {"depth": 3}, "spec.yaml").depth == 3
        with pytest.raises(
            ValueError, match=re.escape("'house_models.Helper' is not an estimator: it has no fit or predict")
        ):
            locate("house_models.Helper")
        with pytest.raises(ValueError, match="not in an allowed module"):
            locate("house_modelsx.Stump")
    finally:
        sys.modules.pop("house_models", None)


def test_a_trusted_module_without_python_source_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(ALLOWED_MODULES_ENV, "builtins")
    with pytest.raises(ValueError, match=re.escape("module 'builtins' of 'builtins.eval' is not installed")):
        locate("builtins.eval")


def public_path(cls: type) -> str:
    """Where scikit-learn exports ``cls``: its module up to the first private part (``sklearn.linear_model``
    for ``sklearn.linear_model._ridge``); private paths are refused."""
    parts = cls.__module__.split(".")
    public = parts[: next((i for i, p in enumerate(parts) if p.startswith("_")), len(parts))]
    return ".".join([*public, cls.__name__])


def test_the_source_check_agrees_with_scikit_learn_on_every_estimator():
    """``locate`` reads the source without importing it; importing shows what each class really has."""
    from sklearn.utils import all_estimators

    for _, cls in all_estimators():
        is_estimator = callable(getattr(cls, "fit", None)) and callable(getattr(cls, "predict", None))
        try:
            locate(public_path(cls))
            accepted = True
        except ValueError:
            accepted = False
        assert accepted == is_estimator, public_path(cls)
