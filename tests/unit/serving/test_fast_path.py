"""The compiled fast path against the real fitted scikit-learn models it replaces, on the bundled data."""

import dataclasses
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge, SGDRegressor
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mlops_assets.data.snapshot import read_source
from mlops_assets.model.features import FeatureTransformer, _Step
from mlops_assets.model.pipeline_model import PipelineModel, fit_pipeline_model
from mlops_assets.model.torch_mlp import TorchMLP
from mlops_assets.serving.fast_path import CompiledModel, LinearFunction, TreeEnsemble, compile_model, verify
from mlops_assets.spec import load_spec

REPO = Path(__file__).resolve().parents[3]
TOLERANCE = 1e-9


@cache
def split(name: str):
    """Even rows to train, odd rows held out; a fifth of the holdout loses some values, as requests do."""
    spec = load_spec(REPO / "pipelines" / f"{name}.yaml")
    data = read_source(spec, REPO / "pipelines").frame
    train, holdout = data.iloc[::2], data.iloc[1::2].copy()
    for column in spec.input_columns[:3]:
        holdout.loc[holdout.index[::5], column] = None
    return spec, train, holdout


def fitted(name: str, estimator) -> PipelineModel:
    spec, train, _ = split(name)
    return fit_pipeline_model(spec, train, estimator)


def assert_same_predictions(compiled: CompiledModel, model: PipelineModel, columns) -> None:
    expected, actual = model.predict(columns), compiled.predict(columns)
    assert actual.labels.tolist() == expected.labels.tolist()
    features = model.transformer.transform(columns)  # what both scored, handed back for the skew check
    np.testing.assert_array_equal(expected.features, features)
    np.testing.assert_array_equal(actual.features, features)
    if expected.proba is None:
        assert actual.proba is None
        np.testing.assert_allclose(actual.labels, expected.labels, rtol=0, atol=TOLERANCE)
    else:
        np.testing.assert_allclose(actual.proba, expected.proba, rtol=0, atol=TOLERANCE)


CASES = [
    ("breast_cancer", LogisticRegression(max_iter=1000)),
    ("breast_cancer", DecisionTreeClassifier(random_state=0)),
    ("breast_cancer", RandomForestClassifier(10, min_samples_leaf=3, random_state=0)),
    ("breast_cancer", ExtraTreesClassifier(10, random_state=0)),
    ("breast_cancer", GradientBoostingClassifier(n_estimators=10, random_state=0)),
    ("breast_cancer", GradientBoostingClassifier(n_estimators=10, init="zero", random_state=0)),
    ("breast_cancer", HistGradientBoostingClassifier(max_iter=10, random_state=0)),
    ("wine", LogisticRegression(max_iter=5000)),
    ("wine", RandomForestClassifier(10, random_state=0)),
    ("wine", GradientBoostingClassifier(n_estimators=5, random_state=0)),
    ("wine", HistGradientBoostingClassifier(max_iter=5, random_state=0)),
    ("diabetes", LinearRegression()),
    ("diabetes", Ridge()),
    ("diabetes", Lasso()),
    ("diabetes", ElasticNet()),
    ("diabetes", SGDRegressor(random_state=0)),
    ("diabetes", DecisionTreeRegressor(random_state=0)),
    ("diabetes", RandomForestRegressor(10, random_state=0)),
    ("diabetes", ExtraTreesRegressor(10, random_state=0)),
    ("diabetes", GradientBoostingRegressor(n_estimators=10, random_state=0)),
    ("diabetes", GradientBoostingRegressor(n_estimators=10, loss="huber", random_state=0)),
    ("diabetes", HistGradientBoostingRegressor(max_iter=10, random_state=0)),
    ("diabetes", HistGradientBoostingRegressor(max_iter=10, loss="poisson", random_state=0)),
]


@pytest.mark.parametrize(("name", "estimator"), CASES, ids=lambda v: v if isinstance(v, str) else repr(v))
def test_compiled_model_predicts_like_the_python_model(name, estimator):
    model = fitted(name, estimator)
    compiled = compile_model(model)
    assert compiled is not None
    assert compiled.description.startswith(f"compiled:{type(estimator).__name__}(")
    assert (compiled.task, compiled.input_columns, compiled.classes) == (model.task, model.input_columns, model.classes)
    _, _, holdout = split(name)
    assert_same_predictions(compiled, model, holdout)
    request = {c: [None if i < 2 else holdout[c].iloc[0]] for i, c in enumerate(model.input_columns)}
    assert_same_predictions(compiled, model, request)  # one row, as the endpoint parses it
    check = verify(compiled, model, holdout, TOLERANCE)
    assert check.passed and check.rows == len(holdout) and check.label_agreement == 1.0
    assert check.max_abs_diff <= TOLERANCE and "labels differ" not in check.reason


def test_a_full_depth_forest_of_100_trees():
    model = fitted("breast_cancer", RandomForestClassifier(100, random_state=0))
    compiled = compile_model(model)
    assert compiled is not None and compiled.description.startswith("compiled:RandomForestClassifier(100 trees")
    _, _, holdout = split("breast_cancer")
    check = verify(compiled, model, holdout, TOLERANCE)
    assert check.passed, check.reason
    assert check.reason.endswith("labels identical") and check.reason.startswith(f"{len(holdout)} rows")


def nan_data(seed: int = 0):
    """Features where a missing value says something about the label, so models learn where NaN goes."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(400, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 1)
    x[rng.random(400) < 0.2, 0] = np.nan
    y[np.isnan(x[:, 0])] = 0
    x[rng.random(400) < 0.1, 1] = np.nan
    return x, y


def raw_model(estimator, task: str, classes) -> PipelineModel:
    """A model whose evaluator is called on raw features, NaN included (the transformer would fill them)."""
    columns = [f"x{i}" for i in range(4)]
    return PipelineModel(
        task, columns, FeatureTransformer({}, [_Step(c, "passthrough") for c in columns]), estimator, classes
    )


@pytest.mark.parametrize(
    "estimator",
    [
        HistGradientBoostingClassifier(max_iter=20, random_state=0),
        DecisionTreeClassifier(max_depth=6, random_state=0),
        RandomForestClassifier(10, random_state=0),
        HistGradientBoostingRegressor(max_iter=20, random_state=0),
    ],
    ids=lambda e: type(e).__name__,
)
def test_missing_values_follow_the_learnt_direction(estimator):
    x, y = nan_data()
    if "Regressor" in type(estimator).__name__:
        estimator.fit(x, y.astype(float))
        model, predict = raw_model(estimator, "regression", None), estimator.predict
    else:
        estimator.fit(x, y)
        model, predict = raw_model(estimator, "multiclass", [0, 1, 2]), estimator.predict_proba
    evaluator = compile_model(model).evaluator
    test, _ = nan_data(seed=1)
    assert not np.array_equal(predict(test), predict(np.nan_to_num(test)))  # NaN routing matters here
    np.testing.assert_allclose(evaluator(test), predict(test), rtol=0, atol=TOLERANCE)


def test_hist_gradient_boosting_binary_on_missing_values():
    x, y = nan_data()
    estimator = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(x, y > 0)
    evaluator = compile_model(raw_model(estimator, "binary", [False, True])).evaluator
    test, _ = nan_data(seed=1)
    np.testing.assert_allclose(evaluator(test), estimator.predict_proba(test), rtol=0, atol=TOLERANCE)


def corrupted(compiled: CompiledModel, **changes) -> CompiledModel:
    return dataclasses.replace(compiled, evaluator=dataclasses.replace(compiled.evaluator, **changes))


def test_verify_fails_a_compiled_model_with_other_coefficients():
    model = fitted("breast_cancer", LogisticRegression(max_iter=1000))
    compiled = compile_model(model)
    assert isinstance(compiled.evaluator, LinearFunction)
    _, _, holdout = split("breast_cancer")
    check = verify(corrupted(compiled, coef=compiled.evaluator.coef * 1.001), model, holdout, TOLERANCE)
    assert not check.passed and check.max_abs_diff > TOLERANCE and "> 1e-09" in check.reason
    flipped = verify(corrupted(compiled, coef=-compiled.evaluator.coef), model, holdout, TOLERANCE)
    assert not flipped.passed and flipped.label_agreement < 0.5 and "labels differ on" in flipped.reason


def test_verify_fails_a_forest_with_moved_thresholds():
    model = fitted("breast_cancer", RandomForestClassifier(10, random_state=0))
    compiled = compile_model(model)
    assert isinstance(compiled.evaluator, TreeEnsemble)
    _, _, holdout = split("breast_cancer")
    check = verify(corrupted(compiled, threshold=compiled.evaluator.threshold + 0.3), model, holdout, TOLERANCE)
    assert not check.passed and check.max_abs_diff > 0.01, check.reason


def test_verify_fails_when_the_compiled_model_raises():
    model = fitted("diabetes", Ridge())
    compiled = compile_model(model)
    _, _, holdout = split("diabetes")
    check = verify(corrupted(compiled, coef=compiled.evaluator.coef[:-1]), model, holdout, TOLERANCE)
    assert not check.passed and "compiled model failed" in check.reason and "ValueError" in check.reason


def test_verify_needs_rows():
    model = fitted("diabetes", Ridge())
    _, _, holdout = split("diabetes")
    check = verify(compile_model(model), model, holdout.iloc[:0], TOLERANCE)
    assert not check.passed and check.rows == 0 and check.reason == "no rows to compare on"


# Same name as a supported class, but not scikit-learn's: its predict may do anything.
Lookalike = type("LogisticRegression", (LogisticRegression,), {"__module__": "somewhere.else"})


@pytest.mark.parametrize(
    "estimator",
    [
        SVC(probability=True, random_state=0),
        Lookalike(max_iter=1000),
        GradientBoostingClassifier(n_estimators=5, init=DummyClassifier(strategy="prior")),
        GradientBoostingClassifier(n_estimators=5, loss="exponential"),
        HistGradientBoostingClassifier(max_iter=5, categorical_features=[0]),
    ],
    ids=["svc", "lookalike", "init_estimator", "exponential_loss", "categorical"],
)
def test_unsupported_estimators_are_not_compiled(estimator):
    if isinstance(estimator, HistGradientBoostingClassifier):
        x, y = nan_data()
        estimator.fit(np.column_stack([np.arange(400) % 5, x[:, 1:]]), y)
        assert compile_model(raw_model(estimator, "multiclass", [0, 1, 2])) is None
    else:
        assert compile_model(fitted("breast_cancer", estimator)) is None


def test_the_torch_mlp_is_not_compiled():
    spec, _, _ = split("wine")
    mlp = TorchMLP("multiclass", [8], epochs=1, batch_size=16, learning_rate=0.01)
    model = PipelineModel(spec.task, spec.input_columns, FeatureTransformer.from_spec(spec), mlp, ["class_0"])
    assert compile_model(model) is None
