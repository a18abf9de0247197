"""The endpoint as a real server on an ephemeral loopback port, answering a real HTTP client."""

import contextlib
import http.client
import json
import select
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import uvicorn
from mlflow.deployments import PredictionsResponse
from mlflow.pyfunc.scoring_server.client import dump_input_data
from sklearn.linear_model import LogisticRegression

from mlops_assets.data.snapshot import read_source
from mlops_assets.model.pipeline_model import fit_pipeline_model
from mlops_assets.serving.app import LoadedModel, create_app
from mlops_assets.serving.inference_log import InferenceLogWriter, log_schema
from mlops_assets.serving.loading import with_fast_path
from mlops_assets.serving.row_checks import column_rules
from mlops_assets.serving.run import server_config
from mlops_assets.spec import load_spec

REPO = Path(__file__).resolve().parents[2]
SPEC = load_spec(REPO / "pipelines" / "breast_cancer.yaml")
DTYPES = {c: SPEC.schema_.columns[c].dtype for c in SPEC.input_columns}
DATA = read_source(SPEC, REPO / "pipelines").frame
RULES = column_rules(SPEC.schema_.columns)


def fitted(C: float):
    return fit_pipeline_model(SPEC, DATA, LogisticRegression(C=C, max_iter=1000))


CHALLENGER = LoadedModel("2", fitted(0.0001))  # strongly regularised: answers differently on some rows


@contextlib.contextmanager
def serving(app):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(server_config(app))  # the settings `mlops-assets serve` runs with
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

    shadow_log = InferenceLogWriter(
        tmp_path / "shadow_log", log_schema(DTYPES, SPEC.task, shadow=True), flush_seconds=0.1
    )
    app = create_app(
        SPEC.name,
        DTYPES,
        loader,
        writer,
        admin_token="secret",
        version_loader={"2": CHALLENGER}.__getitem__,
        shadow_log=shadow_log,
        schema=RULES,
    )
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
    assert status == 200 and json.loads(body) | {"mlops_assets": None} == {
        "name": SPEC.name,
        "model_version": "1",
        "path": "python",
        "fast_path_check": "not tried",
        "fast_path_max_rows": 100,
        "mlops_assets": None,
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{oops", "not valid JSON"),
        (b'{"inputs": {"mean_radius": [1.0]}}', "missing column(s)"),
        (b"", "empty request body"),
        (b'{"dataframe_split": {"columns": [], "data": []}}', "the request has no rows"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "exactly one of the keys"),
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
    deadline = time.monotonic() + 30
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


REJECT = "(deployment.on_invalid: reject)"


def split(columns: list[str], row: list) -> bytes:
    return json.dumps({"dataframe_split": {"columns": columns, "data": [row]}}).encode()


@pytest.mark.parametrize("value", ["abc", [1.0, 2.0], {"a": 1}, True])
def test_wrong_types_name_the_row_the_column_and_the_type(endpoint, value):
    port, _ = endpoint
    row = DATA[SPEC.input_columns].iloc[0].tolist()
    row[SPEC.input_columns.index("mean_radius")] = value
    status, _, answer = call(port, "POST", "/invocations", split(SPEC.input_columns, row))
    message = f"1 of 1 row(s) break the schema: row 0, column 'mean_radius': dtype float got {value!r} "
    assert status == 400 and json.loads(answer) == {"error_code": "BAD_REQUEST", "message": message + REJECT}


def test_no_rows_and_unknown_routes_are_4xx(endpoint):
    port, _ = endpoint
    status, _, answer = call(port, "POST", "/invocations", json.dumps({"inputs": {c: [] for c in DTYPES}}).encode())
    assert status == 400 and "no rows" in json.loads(answer)["message"]
    assert call(port, "GET", "/invocations")[0] == 405
    status, _, answer = call(port, "GET", "/nowhere")
    assert status == 404 and json.loads(answer)["error_code"] == "ENDPOINT_NOT_FOUND"


def stream(port: int, head: bytes, chunk: bytes, total: int) -> tuple[int, dict, int]:
    """Send ``head``, then ``chunk`` until ``total`` bytes or until the server answers; the parsed answer
    and the bytes of body sent before it came."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        sent = 0
        while sent < total and not select.select([sock], [], [], 0)[0]:
            sock.sendall(chunk)
            sent += len(chunk)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            answer += sock.recv(65536)
    head_text, _, body = answer.partition(b"\r\n\r\n")
    return int(head_text.split()[1]), json.loads(body), sent


def test_a_100_mb_body_gets_a_413_without_being_read_and_the_server_keeps_serving(endpoint):
    port, _ = endpoint
    total = 100 * 1024 * 1024
    head = f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: {total}\r\n\r\n".encode()
    status, answer, sent = stream(port, head, b"[" * 65536, total)
    assert status == 413 and answer["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert answer["message"] == f"request body of {total} bytes is over the limit of 16777216 bytes"
    assert sent < 32 * 1024 * 1024  # answered once the header was read: the limit plus socket buffers at most
    assert call(port, "POST", "/invocations", rows(1))[0] == 200


def test_a_chunked_body_is_counted_as_it_arrives(endpoint):
    port, _ = endpoint
    head = b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    status, answer, sent = stream(port, head, b"10000\r\n" + b"[" * 65536 + b"\r\n", 100 * 1024 * 1024)
    assert status == 413 and answer["message"] == "request body over the limit of 16777216 bytes"
    assert sent < 32 * 1024 * 1024  # refused once over the limit, not after the whole body
    assert call(port, "POST", "/invocations", rows(1))[0] == 200


def test_a_model_that_fails_to_warm_up_is_not_swapped_in(endpoint, versions):
    port, _ = endpoint
    unfitted = fitted(0.5)
    unfitted.estimator = LogisticRegression()  # loads fine, cannot predict
    versions["current"] = LoadedModel("2", unfitted)
    status, _, body = call(port, "POST", "/admin/reload", b"", {"Authorization": "Bearer secret"})
    assert status == 500 and "version 2 failed to predict a sample row" in json.loads(body)["message"]
    assert call(port, "POST", "/invocations", rows(1))[1]["X-Model-Version"] == "1"
    assert json.loads(call(port, "GET", "/version")[2])["model_version"] == "1"


ADMIN = {"Authorization": "Bearer secret", "Content-Type": "application/json"}


def start(port: int, **rollout) -> dict:
    status, _, body = call(port, "POST", "/admin/rollout", json.dumps(rollout).encode(), ADMIN)
    assert status == 200, body
    return json.loads(body)


def test_shadow_scores_copies_logs_its_answers_apart_and_the_champion_answers(endpoint):
    port, log_dir = endpoint
    assert start(port, mode="shadow", challenger_version="2")["rollout"]["mode"] == "shadow"
    answers = [call(port, "POST", "/invocations", rows(10))[1]["X-Model-Version"] for _ in range(5)]
    assert answers == ["1"] * 5
    arms = json.loads(call(port, "GET", "/admin/status", None, ADMIN)[2])["arms"]
    assert arms["champion"]["requests"] == 5 and arms["challenger"]["rows"] == 50
    assert 0 < arms["challenger"]["disagreements"] <= 50
    shadow = wait_for_rows(log_dir.parent / "shadow_log", 50)
    expected = CHALLENGER.model.predict(DATA.head(10)).labels.astype(str).tolist() * 5
    assert shadow.column("model_version").to_pylist() == ["2"] * 50
    assert shadow.column("prediction").to_pylist() == expected
    disagreements = sum(a != b for a, b in zip(expected, shadow.column("champion_prediction").to_pylist(), strict=True))
    assert disagreements == arms["challenger"]["disagreements"]
    served = wait_for_rows(log_dir, 50)  # the inference log holds each production row once
    assert set(served.column("model_version").to_pylist()) == {"1"}


def wait_for_rows(folder: Path, n: int):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        files = sorted(folder.glob("*.parquet"))
        if files and sum(pq.read_metadata(f).num_rows for f in files) >= n:
            time.sleep(0.3)  # anything more would be a bug the assertions catch
            return pa.concat_tables([pq.read_table(f) for f in sorted(folder.glob("*.parquet"))])
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} rows logged in {folder}")


def test_canary_routes_by_sticky_key_and_ends_on_the_champion(endpoint):
    port, _ = endpoint
    start(port, mode="canary", challenger_version="2", share=0.5, sticky_key="patient_id")

    def version_for(key: str) -> str:
        body = json.dumps({"dataframe_records": [{**DATA[SPEC.input_columns].iloc[0].to_dict(), "patient_id": key}]})
        return call(port, "POST", "/invocations", body.encode())[1]["X-Model-Version"]

    seen = {key: version_for(key) for key in (f"P{i}" for i in range(40))}
    assert set(seen.values()) == {"1", "2"}
    assert all(version_for(key) == version for key, version in list(seen.items())[:10])
    status, _, body = call(port, "POST", "/admin/rollout/end", b"{}", ADMIN)
    final = json.loads(body)
    assert status == 200 and final["model_version"] == "1" and final["arms"]["challenger"]["requests"] > 0
    assert call(port, "POST", "/invocations", rows(1))[1]["X-Model-Version"] == "1"


def test_a_rollout_of_an_unknown_version_is_refused_and_serving_goes_on(endpoint):
    port, _ = endpoint
    status, _, body = call(port, "POST", "/admin/rollout", b'{"mode": "canary", "challenger_version": "9"}', ADMIN)
    assert status == 500 and "could not load challenger 9" in json.loads(body)["message"]
    assert json.loads(call(port, "GET", "/admin/status", None, ADMIN)[2])["rollout"] is None
    assert call(port, "POST", "/invocations", rows(1))[0] == 200


def test_scoring_needs_the_token_only_when_one_is_configured():
    app = create_app(SPEC.name, DTYPES, lambda: LoadedModel("1", fitted(0.5)), scoring_token="s3cret")
    with serving(app) as port:
        status, _, body = call(port, "POST", "/invocations", rows(1))
        assert status == 401 and "/invocations and /version need" in json.loads(body)["message"]
        wrong = {"Authorization": "Bearer nope", "Content-Type": "application/json"}
        assert call(port, "POST", "/invocations", rows(1), wrong)[0] == 401
        right = {"Authorization": "Bearer s3cret", "Content-Type": "application/json"}
        assert call(port, "POST", "/invocations", rows(1), right)[0] == 200
        # MLflow's own encoding and decoding of the protocol, with the token added (as docs/serving.md shows).
        frame = DATA[SPEC.input_columns].head(3)
        status, _, body = call(port, "POST", "/invocations", dump_input_data(frame).encode(), right)
        predictions = PredictionsResponse.from_json(body.decode()).get_predictions()
        assert status == 200 and predictions.iloc[:, 0].tolist() == fitted(0.5).predict(frame).labels.tolist()
        assert call(port, "GET", "/version")[0] == 401 and call(port, "GET", "/version", None, right)[0] == 200
        assert call(port, "GET", "/ping")[0] == 200  # health checks stay open for the orchestrator


def test_the_fast_path_serves_only_after_it_reproduced_the_model_on_the_holdout():
    model = fitted(0.5)
    holdout = {c: DATA[c].to_numpy() for c in SPEC.input_columns}
    fast = with_fast_path(LoadedModel("1", model), holdout, 1e-9)
    assert fast.path == "compiled:LogisticRegression(13 features)"
    assert fast.fast_path_check.endswith(f"{len(DATA)} rows: max |Δp| 0.0e+00 <= 1e-09, labels identical")
    unchecked = with_fast_path(LoadedModel("1", model), None, 1e-9)
    assert unchecked.path == "python" and "no stored holdout" in unchecked.fast_path_check
    app = create_app(SPEC.name, DTYPES, lambda: fast)
    with serving(app) as port:
        assert json.loads(call(port, "GET", "/version")[2])["path"] == fast.path
        for n in (1, 7, 150):  # 150 rows: over FAST_PATH_MAX_ROWS, the Python model answers
            status, _, body = call(port, "POST", "/invocations", rows(n))
            expected = model.predict(DATA.head(n)).labels.tolist()
            assert status == 200 and json.loads(body)["predictions"] == expected


class BrokenLog:
    """An inference log whose every write fails, as a full disk or a schema mistake would."""

    def append(self, *args, **kwargs):
        raise OSError("no space left on device")

    def close(self):
        pass


def test_a_failing_log_never_reaches_the_client_or_its_connection():
    app = create_app(SPEC.name, DTYPES, lambda: LoadedModel("1", fitted(0.5)), BrokenLog())
    with serving(app) as port:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(4):  # one keep-alive connection: a reset after an answer would fail the next request
            connection.request("POST", "/invocations", rows(1), {"Content-Type": "application/json"})
            response = connection.getresponse()
            assert response.status == 200 and json.loads(response.read())["predictions"]
        connection.close()
