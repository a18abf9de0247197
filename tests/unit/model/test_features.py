import pickle

import numpy as np
import pandas as pd
import pytest

from mlops_assets import grammar
from mlops_assets.model.expressions import FUNCTIONS, Expression
from mlops_assets.model.features import FeatureTransformer, _as_categories, _as_float, _Step


def test_expression_evaluates_with_numpy_functions():
    expr = Expression.parse("log(a / b) + 2 ** c - -1")
    values = expr.evaluate({"a": np.array([np.e * 2]), "b": np.array([2.0]), "c": np.array([3.0])})
    assert values.tolist() == pytest.approx([1 + 8 + 1])
    assert expr.columns == {"a", "b", "c"}


def test_the_grammar_accepts_exactly_the_functions_evaluated():
    """The spec checks expressions with ``mlops_assets.grammar``; each function it accepts is one numpy evaluates."""
    assert tuple(FUNCTIONS) == grammar.FUNCTION_NAMES


@pytest.mark.parametrize("source", ["open('x')", "a.b", "a if b else c", "[a]", "a < b", "lambda: 1", "'s'"])
def test_expression_rejects_anything_but_arithmetic(source):
    with pytest.raises(ValueError):
        Expression.parse(source)


def make_transformer():
    return FeatureTransformer(
        derived={"ratio": "a / b"},
        steps=[
            _Step("a", "standard"),
            _Step("b", "minmax"),
            _Step("c", "onehot"),
            _Step("d", "ordinal", categories=["low", "mid", "high"]),
            _Step("ratio", "passthrough"),
        ],
    )


TRAIN = pd.DataFrame(
    {
        "a": [1.0, 2.0, 3.0, np.nan],
        "b": [2.0, 4.0, 6.0, 8.0],
        "c": ["x", "y", "x", "y"],
        "d": ["low", "high", "mid", "low"],
    }
)


def test_fit_learns_scaling_fill_and_categories():
    transformer = make_transformer().fit(TRAIN)
    out = transformer.transform(TRAIN)
    assert transformer.output_names == ["a", "b", "c=x", "c=y", "d", "ratio"]
    a = out[:, 0]
    assert a[3] == pytest.approx(0.0)  # missing value filled with the training mean, then centred
    assert np.mean(a[:3]) == pytest.approx(0.0) and np.std(a[:3]) == pytest.approx(1.0)
    assert out[:, 1].tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert out[:, 2:4].tolist() == [[1, 0], [0, 1], [1, 0], [0, 1]]
    assert out[:, 4].tolist() == [0, 2, 1, 0]
    assert out[:3, 5].tolist() == pytest.approx([0.5, 0.5, 0.5])


def test_unseen_categories_do_not_fail_a_request():
    transformer = make_transformer().fit(TRAIN)
    row = {"a": [1.0], "b": [2.0], "c": ["z"], "d": ["extreme"]}
    out = transformer.transform(row)
    assert out[0, 2:4].tolist() == [0, 0] and out[0, 4] == -1


def test_serving_columns_give_the_training_features():
    """A parsed JSON request (lists) and a DataFrame row give identical features: no training/serving skew."""
    transformer = make_transformer().fit(TRAIN)
    request = {"a": [2.0], "b": [4.0], "c": ["y"], "d": ["high"]}
    assert transformer.transform(request).tolist() == transformer.transform(TRAIN.iloc[[1]]).tolist()


def test_pickle_round_trip_keeps_the_fitted_state():
    transformer = make_transformer().fit(TRAIN)
    clone = pickle.loads(pickle.dumps(transformer))
    np.testing.assert_array_equal(clone.transform(TRAIN), transformer.transform(TRAIN))


def reference_transform(transformer: FeatureTransformer, columns) -> np.ndarray:
    """The transform written out step by step and column by column, as it was before it was vectorised."""
    values = dict(columns)
    for name, source in transformer.derived.items():
        values[name] = Expression.parse(source).evaluate(values)
    blocks = []
    for step in transformer.steps:
        x = values[step.column]
        if step.kind == "onehot":
            cats = np.asarray(_as_categories(x), dtype=object)
            blocks.append((cats[:, None] == np.asarray(step.categories, dtype=object)[None, :]).astype(float))
        elif step.kind == "ordinal":
            index = {c: i for i, c in enumerate(step.categories)}
            blocks.append(np.array([index.get(v, -1) for v in _as_categories(x)], dtype=float)[:, None])
        else:
            x = _as_float(x)
            x = np.where(np.isfinite(x), x, step.fill)
            blocks.append(((x - step.center) / step.scale)[:, None])
    return np.hstack(blocks)


def random_frame(seed: int, n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.normal(5, 3, n),
            "b": rng.uniform(-1, 4, n),
            "c": rng.choice(["x", "y", "z", "w"], n).astype(object),
            "d": rng.choice(["low", "mid", "high", "extreme"], n).astype(object),
        }
    )
    frame.loc[rng.random(n) < 0.15, "a"] = np.nan
    frame.loc[rng.random(n) < 0.05, "b"] = 0.0  # a / b: inf and nan in the derived column, filled like a gap
    frame.loc[rng.random(n) < 0.1, "c"] = None
    frame.loc[rng.random(n) < 0.1, "d"] = None
    return frame


def test_vectorised_transform_is_bit_identical_to_the_step_by_step_one():
    transformer = make_transformer().fit(random_frame(0).iloc[:200].query("c != 'w'"))  # "w" is unseen in fit
    test = random_frame(1)
    expected = reference_transform(transformer, test)
    for columns in (test, {c: test[c].tolist() for c in test}, {c: test[c].to_numpy() for c in test}):
        out = transformer.transform(columns)
        assert out.shape == expected.shape and out.tobytes() == expected.tobytes()
    for i in range(5):  # single rows, as the endpoint sends them
        row = {c: test[c].iloc[i : i + 1].tolist() for c in test}
        assert transformer.transform(row).tobytes() == expected[i : i + 1].tobytes()


def test_refitting_uses_the_new_statistics():
    """The numeric parameters are laid out as arrays when fitted: a second fit must not leave the old ones."""
    transformer = make_transformer().fit(TRAIN)
    before = transformer.transform(TRAIN)
    scaled = TRAIN.assign(a=TRAIN["a"] * 10 + 1, b=TRAIN["b"] - 2)
    assert transformer.fit(scaled).transform(scaled).tobytes() == reference_transform(transformer, scaled).tobytes()
    np.testing.assert_allclose(transformer.transform(scaled)[:, :2], before[:, :2])  # a, b: same once rescaled
