"""A torch training killed mid-run (a pod restarted, a step retried) resumes from its last epoch's checkpoint.

The training entry point runs as the trainers run it, ``python -m mlops_assets.model.training`` under Dagster
Pipes (its context and messages passed through files, as ``PipesSubprocessClient`` does), with a local store
and a SQLite MLflow; the checkpoint's round trip through an S3 bucket runs against moto's server.
"""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mlops_assets.model.pipeline_model import fit_pipeline_model
from mlops_assets.model.registry import MlflowRegistryClient
from mlops_assets.model.torch_mlp import load_checkpoint, remove_checkpoint, save_checkpoint
from mlops_assets.model.training import make_estimator
from mlops_assets.naming import StorePrefix, store_key
from mlops_assets.records import TrainingRequest
from mlops_assets.spec import load_spec

REPO = Path(__file__).resolve().parents[2]
EPOCHS = 30
THREADS = 1  # tiny matrices: more threads only spin, and one thread sums in one order in every process
SPEC = f"""
name: toy
task: binary
target: label
source:
  path: toy.csv
schema:
  columns:
    x0: {{dtype: float}}
    x1: {{dtype: float}}
    x2: {{dtype: float}}
    x3: {{dtype: float}}
    label: {{dtype: str, isin: [neg, pos]}}
model:
  torch: {{hidden_layers: [16], epochs: {EPOCHS}, batch_size: 16, learning_rate: 0.01, device: cpu}}
"""


def toy_request(folder: Path) -> TrainingRequest:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(800, 4))
    label = np.where(X[:, 0] * X[:, 1] + 0.3 * rng.normal(size=800) > 0, "pos", "neg")
    train = pd.DataFrame({**{f"x{i}": X[:, i] for i in range(4)}, "label": label})
    train.to_csv(folder / "toy.csv", index=False)
    train.to_parquet(folder / "train.parquet")
    (folder / "toy.yaml").write_text(SPEC)
    tracking_uri = f"sqlite:///{folder / 'mlflow.db'}"
    return TrainingRequest(
        spec_path=str(folder / "toy.yaml"),
        train_uri=str(folder / "train.parquet"),
        tracking_uri=tracking_uri,
        experiment_id=MlflowRegistryClient(tracking_uri, str(folder / "artifacts")).experiment("toy"),
        tags={},
        checkpoint_uri=str(folder / "store" / store_key("toy", StorePrefix.checkpoints, "test.pt")),
    )


def start_training(request: TrainingRequest, messages: Path) -> subprocess.Popen:
    """The training entry point in a new process, its Pipes context inline and its messages in a file."""
    from dagster_pipes import encode_param

    context = {
        "asset_keys": ["toy/trained_model"],
        "code_version_by_asset_key": None,
        "provenance_by_asset_key": None,
        "partition_key": None,
        "partition_key_range": None,
        "partition_time_window": None,
        "run_id": "test-run",
        "job_name": None,
        "retry_number": 0,
        "extras": {"request": asdict(request)},
    }
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": str(THREADS),
        "DAGSTER_PIPES_CONTEXT": encode_param({"data": context}),
        "DAGSTER_PIPES_MESSAGES": encode_param({"path": str(messages)}),
    }
    command = [sys.executable, "-m", "mlops_assets.model.training"]
    return subprocess.Popen(command, env=env, cwd=messages.parent, stderr=subprocess.PIPE, text=True)


def read_messages(path: Path) -> tuple[list[str], dict]:
    """The lines the training logged, and its result."""
    messages = [json.loads(line) for line in path.read_text().splitlines()]
    logged = [m["params"]["message"] for m in messages if m["method"] == "log"]
    [result] = [m["params"]["payload"] for m in messages if m["method"] == "report_custom_message"]
    return logged, result


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(before)


def test_a_training_killed_after_an_epoch_resumes_there_and_ends_with_the_weights_of_an_uninterrupted_one(
    tmp_path, threads
):
    request = toy_request(tmp_path)
    checkpoint = Path(request.checkpoint_uri)
    killed = start_training(request, tmp_path / "killed.jsonl")
    deadline = time.monotonic() + 60
    while not checkpoint.exists():
        assert killed.poll() is None, f"the training ended before its first checkpoint: {killed.stderr.read()}"
        assert time.monotonic() < deadline, "no checkpoint within 60 s"
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=10)
    saved = load_checkpoint(request.checkpoint_uri)["epoch"]
    assert 1 <= saved < EPOCHS

    resumed = start_training(request, tmp_path / "resumed.jsonl")
    _, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, stderr
    logged, result = read_messages(tmp_path / "resumed.jsonl")
    assert f"resuming from epoch {saved}/{EPOCHS} (checkpoint {checkpoint})" in logged
    assert sum(line.startswith("epoch ") for line in logged) == EPOCHS - saved
    assert result["resumed_from_epoch"] == saved and result["precision"] == "fp32"
    assert not checkpoint.exists(), "the checkpoint outlived the registered version"

    spec = load_spec(request.spec_path)
    uninterrupted = fit_pipeline_model(
        spec, pd.read_parquet(request.train_uri), make_estimator(spec, request.spec_path)
    )
    registered = MlflowRegistryClient(request.tracking_uri).load("toy", result["version"])
    expected = uninterrupted.estimator.network_.state_dict()
    for name, weights in registered.estimator.network_.state_dict().items():
        torch.testing.assert_close(weights, expected[name], rtol=0, atol=0, msg=name)


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch):
    """An empty bucket on moto's S3 server, which the checkpoint functions reach through AWS_ENDPOINT_URL."""
    import s3fs
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
    s3fs.S3FileSystem.clear_instance_cache()
    s3fs.S3FileSystem().mkdir("checkpoints-test")
    yield "checkpoints-test"
    s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


def test_a_checkpoint_in_an_s3_bucket_is_written_read_and_removed_through_its_url(bucket):
    uri = f"s3://{bucket}/toy/checkpoints/test.pt"
    assert load_checkpoint(uri) is None
    save_checkpoint(uri, {"epoch": 1, "generator": torch.Generator().manual_seed(0).get_state()})
    save_checkpoint(uri, {"epoch": 2, "generator": torch.Generator().manual_seed(0).get_state()})
    assert load_checkpoint(uri)["epoch"] == 2
    remove_checkpoint(uri)
    assert load_checkpoint(uri) is None
