import pickle

import numpy as np
import pandas as pd
import pytest

from mlops_assets.expressions import Expression
from mlops_assets.features import FeatureTransformer, _Step


def test_expression_evaluates_with_numpy_functions():
    expr = Expression.parse("log(a / b) + 2 ** c - -1")
    values = expr.evaluate({"a": np.array([np.e * 2]), "b": np.array([2.0]), "c": np.array([3.0])})
    assert values.tolist() == pytest.approx([1 + 8 + 1])
    assert expr.columns == {"a", "b", "c"}


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
