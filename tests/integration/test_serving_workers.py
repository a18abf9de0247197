"""An endpoint of two worker processes on one port (`mlops-assets serve --workers 2`), as real processes answering
real HTTP on loopback: both answer, /metrics and /admin/status are the endpoint's sums, a reload or rollout reaches
both before it is acknowledged, a killed worker comes back on what the endpoint serves, and every worker's log rows
are read back by the monitoring's reader."""

import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mlops_assets.data.locations import log_files
from mlops_assets.monitoring.log_window import newest_window
from mlops_assets.resources.artifact_store import FsspecArtifactStore
from tests.integration.test_server import rows

REPO = Path(__file__).resolve().parents[2]
ADMIN = {"Authorization": "Bearer secret", "Content-Type": "application/json"}
INFO = re.compile(r'mlops_worker_info\{answering="(\w+)",model_version="(\w*)",pid="(\d+)",worker="(\d+)"\}')


def call(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """One request on a connection of its own: the kernel spreads connections over the workers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body, headers or {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


@contextlib.contextmanager
def workers_endpoint(folder: Path, workers: int = 2):
    (folder / "champion").write_text("1")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.workers_endpoint", str(folder), str(workers)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(process.stdout.readline())
        deadline = time.monotonic() + 60
        while len(workers_of(port)) < workers:  # every worker has loaded its model and published its figures
            assert time.monotonic() < deadline and process.poll() is None, "the workers did not start"
            time.sleep(0.2)
        yield port, process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def metrics(port: int) -> str:
    status, _, body = call(port, "GET", "/metrics")
    assert status == 200
    return body.decode()


def workers_of(port: int) -> dict[int, int]:
    """worker index -> pid, as /metrics names them."""
    try:
        return {int(worker): int(pid) for _, _, pid, worker in INFO.findall(metrics(port))}
    except OSError:
        return {}


def answering_pid(port: int) -> int:
    return next(int(pid) for answering, _, pid, _ in INFO.findall(metrics(port)) if answering == "true")


def counter(text: str, name: str, labels: str) -> float:
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


@pytest.fixture
def endpoint(tmp_path):
    with workers_endpoint(tmp_path) as (port, process):
        yield port, process, tmp_path


def test_two_workers_answer_on_one_port(endpoint):
    port, process, _ = endpoint
    workers = workers_of(port)
    assert sorted(workers) == [0, 1] and len(set(workers.values())) == 2
    assert process.pid not in workers.values()  # the parent supervises, the workers serve
    assert {call(port, "GET", "/ping")[0] for _ in range(10)} == {200}  # every worker started: ready
    seen = {answering_pid(port) for _ in range(60)}
    assert seen == set(workers.values()), f"fresh connections reached {seen} of {workers}"
    for _ in range(10):
        status, headers, _ = call(port, "POST", "/invocations", rows(1))
        assert status == 200 and headers["X-Model-Version"] == "1"
    status, _, body = call(port, "GET", "/version")  # ScoringApp's route, on a worker
    assert status == 200 and json.loads(body)["model_version"] == "1"


def test_metrics_and_status_sum_every_worker(endpoint):
    port, _, _ = endpoint
    for _ in range(40):
        assert call(port, "POST", "/invocations", rows(3))[0] == 200
    text = metrics(port)
    assert counter(text, "mlops_requests_total", 'route="/invocations",status="200"') == 40
    assert counter(text, "mlops_rows_scored_total", 'arm="champion",model_version="1"') == 120
    assert re.search(r"^mlops_request_seconds_count 40\.0$", text, re.MULTILINE)
    status = json.loads(call(port, "GET", "/admin/status", None, ADMIN)[2])
    assert status["requests"]["accepted"] == 40 and len(status["workers"]) == 2


def test_a_reload_and_a_rollout_reach_both_workers_before_they_are_acknowledged(endpoint):
    port, _, folder = endpoint
    answers: list[tuple[float, str]] = []  # (when the request was sent, the version that answered)
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            sent = time.monotonic()
            status, headers, _ = call(port, "POST", "/invocations", rows(1))
            assert status == 200
            answers.append((sent, headers["X-Model-Version"]))

    clients = [threading.Thread(target=client) for _ in range(4)]
    for thread in clients:
        thread.start()
    try:
        time.sleep(0.5)
        (folder / "champion").write_text("2")
        status, _, body = call(port, "POST", "/admin/reload", b"{}", ADMIN)
        acknowledged = time.monotonic()
        assert status == 200 and json.loads(body) == {"model_version": "2", "previous": "1"}
        time.sleep(1.0)
        rollout = json.dumps({"mode": "canary", "challenger_version": "1", "share": 0.5}).encode()
        rolled = time.monotonic()
        assert call(port, "POST", "/admin/rollout", rollout, ADMIN)[0] == 200
        time.sleep(1.0)
        status, _, body = call(port, "POST", "/admin/rollout/end", b"{}", ADMIN)
        ended = time.monotonic()
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in clients:
            thread.join(30)
    final = json.loads(body)
    assert status == 200 and final["model_version"] == "2" and final["rollout"]["challenger_version"] == "1"
    arms = final["arms"]
    assert arms["challenger"]["requests"] > 0 and arms["champion"]["requests"] > 0
    after_reload = [version for sent, version in answers if acknowledged <= sent < rolled]
    after_end = [version for sent, version in answers if sent >= ended]
    assert after_reload and set(after_reload) == {"2"}, "a worker answered with the version the reload left"
    assert after_end and set(after_end) == {"2"}, "a worker answered from the challenger after the rollout ended"
    assert {served for _, served, _, _ in INFO.findall(metrics(port))} == {"2"}


def test_a_killed_worker_is_restarted_on_what_the_endpoint_serves(endpoint):
    port, _, folder = endpoint
    (folder / "champion").write_text("2")
    assert call(port, "POST", "/admin/reload", b"{}", ADMIN)[0] == 200
    (folder / "champion").write_text("1")  # the registry moves on, the endpoint was not told: it serves 2
    for _ in range(10):
        assert call(port, "POST", "/invocations", rows(1))[0] == 200
    deadline = time.monotonic() + 30  # each worker has published its figures since (a loaded machine is slow to)
    while counter(metrics(port), "mlops_requests_total", 'route="/invocations",status="200"') < 10:
        assert time.monotonic() < deadline
    before = workers_of(port)
    os.kill(before[1], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        now = workers_of(port)
        if len(now) == 2 and now[1] != before[1]:
            break
        assert time.monotonic() < deadline, f"worker 1 was not restarted: {now}"
        time.sleep(0.2)
    assert now[0] == before[0]
    versions = {call(port, "POST", "/invocations", rows(1))[1]["X-Model-Version"] for _ in range(40)}
    assert versions == {"2"}
    assert {answering_pid(port) for _ in range(40)} == set(now.values())
    text = metrics(port)  # the killed worker's requests still count (its last published figures)
    assert counter(text, "mlops_requests_total", 'route="/invocations",status="200"') >= 50


def test_every_worker_s_log_rows_are_read_back(tmp_path):
    with workers_endpoint(tmp_path) as (port, _):
        pids = set()
        for i in range(60):
            assert call(port, "POST", "/invocations", rows(2))[0] == 200
            if i % 10 == 0:
                pids.add(answering_pid(port))
    store = FsspecArtifactStore(root=str(tmp_path))
    keys = log_files(store, "log")
    assert {key.rsplit("-", 1)[-1] for key in keys} == {"w0.parquet", "w1.parquet"}, keys
    window = newest_window(store, "log", 10_000).table
    assert window.num_rows == 120 and len(set(window.column("request_id").to_pylist())) == 60
