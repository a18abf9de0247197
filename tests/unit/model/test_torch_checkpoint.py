"""The torch trainer's checkpoints: a fit stopped after an epoch resumes to the weights of one never stopped,
a checkpoint holds only tensors and plain values, and its name changes with whatever decides the weights."""

import dataclasses
import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from mlops_assets.model.torch_mlp import TorchMLP, load_checkpoint, remove_checkpoint, save_checkpoint

REPO = Path(__file__).resolve().parents[3]
SETTINGS = {"hidden_layers": [8], "epochs": 5, "batch_size": 32, "learning_rate": 0.02, "device": "cpu"}


def data(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(400, 3))
    return X, (X[:, 0] * X[:, 1] + 0.3 * rng.normal(size=400) > 0).astype(int)


class Killed(Exception):
    """Stands for the pod dying once an epoch's checkpoint is written."""


class KillAfterEpoch(logging.Handler):
    """Raises, once, on the trainer's line for ``epoch``, which it logs once that epoch's checkpoint is saved."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch, self.fired = epoch, False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.fired and record.getMessage().startswith(f"epoch {self.epoch}/"):
            self.fired = True
            raise Killed


class Arbitrary:
    """Any class: what a checkpoint must never make its reader import and build."""


@pytest.fixture
def kill_after_epoch():
    logger = logging.getLogger("mlops_assets.model.torch_mlp")
    level = logger.level
    logger.setLevel(logging.INFO)
    handlers = []

    def install(epoch: int) -> None:
        handlers.append(KillAfterEpoch(epoch))
        logger.addHandler(handlers[-1])

    yield install
    for handler in handlers:
        logger.removeHandler(handler)
    logger.setLevel(level)


def assert_same_weights(a: TorchMLP, b: TorchMLP) -> None:
    b_weights = b.network_.state_dict()
    for name, weights in a.network_.state_dict().items():
        torch.testing.assert_close(weights, b_weights[name], rtol=0, atol=0, msg=name)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])  # fp16: the loss scaler's state is resumed too
def test_a_fit_stopped_after_an_epoch_resumes_there_and_ends_with_the_weights_of_an_uninterrupted_fit(
    tmp_path, kill_after_epoch, precision
):
    X, y = data()
    uri = str(tmp_path / "store" / "toy" / "checkpoints" / "a.pt")
    weights = np.random.default_rng(1).uniform(0.5, 2, size=len(y))
    settings = {**SETTINGS, "precision": precision}
    uninterrupted = TorchMLP("binary", **settings).fit(X, y, sample_weight=weights)
    kill_after_epoch(2)
    with pytest.raises(Killed):
        TorchMLP("binary", **settings, checkpoint_uri=uri).fit(X, y, sample_weight=weights)
    assert load_checkpoint(uri)["epoch"] == 2

    resumed = TorchMLP("binary", **settings, checkpoint_uri=uri).fit(X, y, sample_weight=weights)
    assert resumed.resumed_from_epoch_ == 2 and len(resumed.epoch_seconds_) == 3
    assert_same_weights(resumed, uninterrupted)
    assert uninterrupted.resumed_from_epoch_ is None


def test_a_finished_checkpoint_gives_the_same_model_again_without_training(tmp_path):
    """What a retry of a training whose registration failed finds: the last epoch."""
    X, y = data()
    uri = str(tmp_path / "last.pt")
    first = TorchMLP("binary", **SETTINGS, checkpoint_uri=uri).fit(X, y)
    again = TorchMLP("binary", **SETTINGS, checkpoint_uri=uri).fit(X, y)
    assert again.resumed_from_epoch_ == SETTINGS["epochs"] and again.epoch_seconds_ == []
    assert_same_weights(again, first)
    remove_checkpoint(uri)
    assert load_checkpoint(uri) is None
    assert TorchMLP("binary", **SETTINGS, checkpoint_uri=uri).fit(X, y).resumed_from_epoch_ is None


def test_a_checkpoint_holds_tensors_and_plain_values_and_one_with_other_objects_is_refused(tmp_path):
    X, y = data()
    uri = str(tmp_path / "a.pt")
    TorchMLP("binary", **SETTINGS, checkpoint_uri=uri).fit(X, y)
    checkpoint = torch.load(uri, weights_only=True)
    assert checkpoint["epoch"] == SETTINGS["epochs"] and checkpoint["generator"].dtype == torch.uint8
    assert {"network", "optimizer", "scaler"} <= checkpoint.keys()

    save_checkpoint(uri, {**checkpoint, "epoch": Arbitrary()})
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(uri)


def test_a_write_cut_short_leaves_the_previous_checkpoint_readable(tmp_path):
    uri = str(tmp_path / "a.pt")
    save_checkpoint(uri, {"epoch": 3})
    Path(f"{uri}.partial").write_bytes(b"half a checkp")  # killed while writing epoch 4
    assert load_checkpoint(uri) == {"epoch": 3}
    remove_checkpoint(uri)
    assert list(tmp_path.iterdir()) == []


def test_the_cpu_trains_in_fp32_unless_a_precision_is_asked_for():
    X, y = data()
    in_fp32 = TorchMLP("binary", **SETTINGS).fit(X, y)
    in_bf16 = TorchMLP("binary", **SETTINGS, precision="bf16").fit(X, y)
    assert in_fp32.precision_used_ == "fp32" and in_bf16.precision_used_ == "bf16"
    assert in_bf16.get_params()["precision"] == "bf16"
    assert in_bf16.network_[0].weight.dtype == torch.float32  # the weights stay fp32 to serve anywhere
    assert np.mean(in_bf16.predict(X) == in_fp32.predict(X)) > 0.95


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_auto_trains_in_mixed_precision_and_resumes_to_the_weights_of_an_uninterrupted_fit(
    tmp_path, kill_after_epoch
):
    X, y = data()
    settings = {**SETTINGS, "device": "auto"}
    uninterrupted = TorchMLP("binary", **settings).fit(X, y)
    assert uninterrupted.device_used_.startswith("cuda") and uninterrupted.precision_used_ in {"bf16", "fp16"}
    kill_after_epoch(3)
    with pytest.raises(Killed):
        TorchMLP("binary", **settings, checkpoint_uri=str(tmp_path / "a.pt")).fit(X, y)
    resumed = TorchMLP("binary", **settings, checkpoint_uri=str(tmp_path / "a.pt")).fit(X, y)
    assert resumed.resumed_from_epoch_ == 3
    np.testing.assert_allclose(resumed.predict_proba(X), uninterrupted.predict_proba(X), atol=1e-6)


def test_the_checkpoint_key_changes_with_the_training_set_the_model_or_the_code_and_with_nothing_else():
    from mlops_assets.assets.trained_model import checkpoint_key  # Dagster: the GPU image runs the tests above
    from mlops_assets.naming import StorePrefix, store_key
    from mlops_assets.records import FeatureSet
    from mlops_assets.spec import load_spec

    spec = load_spec(REPO / "pipelines" / "wine.yaml")
    features = FeatureSet("v1", "train", "holdout", None, "data", rows_hash="rows1")
    code = {"git_sha": "abc", "package_version": "0.1.0", "spec_location": "/here", "spec_git_sha": "def"}
    key = checkpoint_key(spec, features, code)
    assert key.startswith(store_key("wine", StorePrefix.checkpoints) + "/") and key.endswith(".pt")
    assert checkpoint_key(spec, features, {**code, "spec_location": "/there"}) == key
    other_model = spec.model.model_copy(update={"torch": spec.model.torch.model_copy(update={"epochs": 61})})
    others = [
        checkpoint_key(spec, dataclasses.replace(features, rows_hash="rows2"), code),
        checkpoint_key(spec.model_copy(update={"model": other_model}), features, code),
        checkpoint_key(spec, features, {**code, "git_sha": "abd"}),
    ]
    assert len({key, *others}) == 4
