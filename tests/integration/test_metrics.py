"""``GET /metrics`` of a real ``mlops-assets serve`` process, scraped after traffic and parsed as Prometheus
parses it."""

import os
import select
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.linear_model import LogisticRegression

from mlops_assets.data.snapshot import read_source
from mlops_assets.model.pipeline_model import fit_pipeline_model
from mlops_assets.model.registry import MlflowRegistryClient
from mlops_assets.resources.artifact_store import FsspecArtifactStore
from mlops_assets.serving.app import LoadedModel, create_app
from mlops_assets.serving.endpoint_state import read_state
from mlops_assets.serving.telemetry import stored_snapshots, summarise
from mlops_assets.spec import load_spec
from tests.integration.test_server import DTYPES, SPEC, fitted, serving

pytestmark = pytest.mark.integration


@pytest.fixture
def champion(pipelines, layout):
    """Version 1 of breast_cancer, registered and promoted without a Dagster run."""
    spec = load_spec(pipelines / "breast_cancer.yaml")
    data = read_source(spec, pipelines).frame
    model = fit_pipeline_model(spec, data, LogisticRegression(max_iter=1000))
    registry = MlflowRegistryClient(layout.tracking_uri, str(layout.mlflow_artifacts))  # not ./mlruns
    run = {"tags": {}, "params": {}, "metrics": {}, "environment": {}}
    example = data[spec.input_columns].head(3)
    registered = registry.register(spec, model, example, registry.experiment(spec.name), run, {})
    registry.promote(spec.name, registered.version, "test")
    return spec, data


def call(url: str, method: str = "GET", body: bytes | None = None, timeout: float = 10) -> tuple[int, bytes]:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_a_scrape_after_traffic_counts_requests_rows_and_errors_and_the_snapshot_summarises_them(
    champion, pipelines, layout, tmp_path
):
    spec, data = champion
    log_dir = tmp_path / "inference_log"
    command = [
        *(sys.executable, "-m", "mlops_assets.cli", "serve", str(pipelines / "breast_cancer.yaml")),
        *("--host", "127.0.0.1", "--port", "0", "--tracking-uri", layout.tracking_uri),
        *("--log-dir", str(log_dir), "--state-file", str(tmp_path / "endpoint.json")),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 60
        while not (url := read_state(tmp_path, "endpoint").get("url")) and time.monotonic() < deadline:
            assert process.poll() is None, "the endpoint exited"
            time.sleep(0.1)
        assert call(f"{url}/ping", timeout=60)[0] == 200  # answered once the champion is loaded
        row = orjson.dumps({"dataframe_records": [data[spec.input_columns].iloc[0].to_dict()]})
        assert [call(f"{url}/invocations", "POST", row)[0] for _ in range(20)] == [200] * 20
        assert call(f"{url}/invocations", "POST", b"{")[0] == 400
        assert call(f"{url}/admin/status")[0] == 401
        status, body = call(f"{url}/metrics")
        assert status == 200
        families = {f.name: f for f in text_string_to_metric_families(body.decode())}
        requests = {(s.labels["route"], s.labels["status"]): s.value for s in families["mlops_requests"].samples}
        assert requests[("/invocations", "200")] == 20 and requests[("/invocations", "400")] == 1
        assert requests[("/admin/status", "401")] == 1
        latency = {s.name: s.value for s in families["mlops_request_seconds"].samples if "le" not in s.labels}
        assert latency["mlops_request_seconds_count"] == 21
        (rows,) = families["mlops_rows_scored"].samples
        assert rows.labels == {"model_version": "1", "arm": "champion"} and rows.value == 20
        assert families["mlops_model_info"].samples[0].labels["model_version"] == "1"
        for name in ("mlops_log_dead_lettered_rows", "mlops_log_dropped_rows"):
            assert [s.value for s in families[name].samples] == [0, 0]  # the inference and shadow logs
    finally:
        process.terminate()
        process.wait(30)
    (snapshot,) = stored_snapshots(FsspecArtifactStore(root=str(tmp_path)), log_dir.name, 0)  # written at the stop
    summary = summarise([snapshot], snapshot["time"] - 120, snapshot["time"])
    assert summary["requests"] == 21 and summary["rows_scored"] == 20
    assert summary["log"]["dead_lettered_rows"] == summary["log"]["dropped_rows"] == 0


def answer_to(port: int, sent: bytes) -> bytes:
    """What the server answers to ``sent`` before it closes the connection (within ten seconds)."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(sent)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and select.select([sock], [], [], deadline - time.monotonic())[0]:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    return answer


def test_the_answers_the_server_gives_before_the_app_sees_a_request_are_counted():
    """A late head is answered 408, an unparsable one 400, by the protocol: neither reached /metrics."""
    app = create_app(SPEC.name, DTYPES, lambda: LoadedModel("1", fitted(0.5)), head_timeout_s=0.3)
    with serving(app) as port:
        assert answer_to(port, b"").startswith(b"HTTP/1.1 408 ")  # connects, sends nothing
        assert answer_to(port, b"POST /invocations HTTP/1.1\r\nHost: x\r\n").startswith(b"HTTP/1.1 408 ")
        assert answer_to(port, b"NOT HTTP\r\n\r\n").startswith(b"HTTP/1.1 400 ")
        body = call(f"http://127.0.0.1:{port}/metrics")[1]
    (family,) = [f for f in text_string_to_metric_families(body.decode()) if f.name == "mlops_requests"]
    requests = {(s.labels["route"], s.labels["status"]): s.value for s in family.samples}
    assert requests == {("other", "408"): 1, ("/invocations", "408"): 1, ("other", "400"): 1}
