"""The torch trainer takes sample weights as scikit-learn estimators do: what importance weights and the
training window hand every estimator."""

import numpy as np

from mlops_assets.model.torch_mlp import TorchMLP

SETTINGS = {"hidden_layers": [8], "epochs": 5, "batch_size": 32, "learning_rate": 0.02, "device": "cpu"}


def data(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(400, 3))
    return X, (X[:, 0] + 0.3 * rng.normal(size=400) > 0).astype(int)


def test_equal_weights_train_the_same_network_as_no_weights():
    X, y = data()
    plain = TorchMLP("binary", **SETTINGS).fit(X, y)
    weighted = TorchMLP("binary", **SETTINGS).fit(X, y, sample_weight=np.full(len(y), 3.0))
    np.testing.assert_allclose(plain.predict_proba(X), weighted.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_rows_without_weight_teach_nothing():
    X, y = data()
    flipped = np.r_[y[:200], 1 - y[200:]]  # the second half says the opposite
    ignored = np.r_[np.ones(200), np.zeros(200)]
    model = TorchMLP("binary", **SETTINGS).fit(X, flipped, sample_weight=ignored)
    honest = TorchMLP("binary", **SETTINGS).fit(X[:200], y[:200])
    assert np.mean(model.predict(X) == y) > 0.85  # it learnt the first half's concept alone
    assert np.mean(model.predict(X) == honest.predict(X)) > 0.9
