"""The endpoint as a real server on an ephemeral loopback port, answering a real HTTP client."""

import contextlib
import http.client
import json
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import uvicorn
from sklearn.linear_model import LogisticRegression

from mlops_assets.inference_log import InferenceLogWriter, log_schema
from mlops_assets.model import fit_pipeline_model
from mlops_assets.server import LoadedModel, create_app
from mlops_assets.snapshot import read_source
from mlops_assets.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
SPEC = load_spec(REPO / "pipelines" / "breast_cancer.yaml")
DTYPES = {c: SPEC.schema_.columns[c].dtype for c in SPEC.input_columns}
DATA = read_source(SPEC, REPO / "pipelines").frame


def fitted(C: float):
    return fit_pipeline_model(SPEC, DATA, LogisticRegression(C=C, max_iter=1000))


@contextlib.contextmanager
def serving(app):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)


def call(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(method, path, body, headers or {"Content-Type": "application/json"})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, response.headers, data


@pytest.fixture
def versions():
    return {"current": LoadedModel("1", fitted(0.5))}


@pytest.fixture
def endpoint(tmp_path, versions):
    writer = InferenceLogWriter(tmp_path / "log", log_schema(DTYPES, SPEC.task), flush_seconds=0.1)

    def loader():
        if isinstance(versions["current"], Exception):
            raise versions["current"]
        return versions["current"]

    app = create_app(SPEC.name, DTYPES, loader, writer, admin_token="secret")
    with serving(app) as port:
        yield port, tmp_path / "log"


def rows(n: int) -> bytes:
    sample = DATA[SPEC.input_columns].iloc[:n]
    return json.dumps(
        {"dataframe_split": {"columns": list(sample.columns), "data": sample.to_numpy().tolist()}}
    ).encode()


def test_scores_like_the_model_in_process(endpoint, versions):
    port, _ = endpoint
    status, headers, body = call(port, "POST", "/invocations", rows(20))
    assert status == 200 and headers["X-Model-Version"] == "1"
    expected = versions["current"].model.predict(DATA.iloc[:20]).labels.tolist()
    assert json.loads(body)["predictions"] == expected
    assert set(expected) <= {"benign", "malignant"}


def test_ping_and_version(endpoint):
    port, _ = endpoint
    assert call(port, "GET", "/ping")[0] == 200
    status, _, body = call(port, "GET", "/version")
    assert status == 200 and json.loads(body)["model_version"] == "1" and json.loads(body)["name"] == SPEC.name


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{oops", "not valid JSON"),
        (b'{"inputs": {"mean_radius": [1.0]}}', "missing column(s)"),
        (b"", "empty request body"),
    ],
)
def test_bad_requests_get_a_400_and_the_server_keeps_serving(endpoint, body, message):
    port, _ = endpoint
    status, _, answer = call(port, "POST", "/invocations", body)
    assert status == 400 and message in json.loads(answer)["message"]
    assert call(port, "POST", "/invocations", rows(1))[0] == 200


def test_reload_needs_the_token_and_swaps_the_model(endpoint, versions):
    port, _ = endpoint
    assert call(port, "POST", "/admin/reload")[0] == 401
    versions["current"] = LoadedModel("2", fitted(0.01))
    status, _, body = call(port, "POST", "/admin/reload", b"", {"Authorization": "Bearer secret"})
    assert status == 200 and json.loads(body) == {"model_version": "2", "previous": "1"}
    assert call(port, "POST", "/invocations", rows(1))[1]["X-Model-Version"] == "2"


def test_a_model_that_fails_to_load_is_not_swapped_in(endpoint, versions):
    port, _ = endpoint
    versions["current"] = RuntimeError("corrupt artifact")
    status, _, body = call(port, "POST", "/admin/reload", b"", {"Authorization": "Bearer secret"})
    assert status == 500 and "corrupt artifact" in json.loads(body)["message"]
    assert call(port, "POST", "/invocations", rows(1))[1]["X-Model-Version"] == "1"


def test_every_scored_row_lands_in_the_inference_log(endpoint, versions):
    port, log_dir = endpoint
    for _ in range(3):
        assert call(port, "POST", "/invocations", rows(7))[0] == 200
    deadline = time.monotonic() + 5
    while sum(pq.read_metadata(p).num_rows for p in log_dir.glob("*.parquet")) < 21 and time.monotonic() < deadline:
        time.sleep(0.05)
    table = pq.ParquetDataset(sorted(log_dir.glob("*.parquet"))).read()
    assert table.num_rows == 21
    assert set(SPEC.input_columns) <= set(table.column_names)
    assert table.column("model_version").to_pylist() == ["1"] * 21
    assert len(set(table.column("request_id").to_pylist())) == 3
    expected = versions["current"].model.predict(DATA.iloc[:7])
    assert table.column("prediction").to_pylist()[:7] == expected.labels.tolist()
    np.testing.assert_allclose(table.column("score").to_numpy()[:7], expected.proba[:, 1])
