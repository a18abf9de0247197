"""Single-row scoring latency and throughput: in-process ``predict``, our endpoint, ``mlflow models serve``.

One run registers a LogisticRegression, a 100-iteration HistGradientBoostingClassifier and a 100-tree
RandomForestClassifier (20 numeric features, synthetic data, fixed seed; 20% held out) in a temporary MLflow
SQLite store, then measures, on the same registered version: (a) ``PipelineModel.predict`` and the compiled fast
path in this process; (b) ``mlops-assets serve`` (the real CLI, which serves the compiled path once it has
reproduced the model on the holdout) with the inference log on, and the same app and server settings with the
log off, two processes of each; (c) ``mlflow models serve --env-manager local``. Every feature is bounded
(ge -100, le 100); the server without the log checks each row against the bounds, as the CLI does once it
passes the spec's schema to ``create_app``.
The load comes from this process over persistent loopback connections, one single-row ``dataframe_split``
request in flight per connection, at 1 and 8 connections.
Usage: python bench/serving.py [--seconds 8] [--rounds 4] [--replicas 2] [--connections 1 8] [--models ...]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FEATURES = [f"x{i:02d}" for i in range(20)]
MODELS = {
    "logreg": ("sklearn.linear_model.LogisticRegression", {"max_iter": 1000}),
    "hgb": ("sklearn.ensemble.HistGradientBoostingClassifier", {"max_iter": 100, "random_state": 0}),
    "rf": ("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 100, "random_state": 0}),
}
HOLDOUT_SHARE = 0.2  # rows kept out of training: what the fast path must reproduce before it serves
WARMUP_REQUESTS = 300
PACKAGES = ("mlflow", "scikit-learn", "numpy", "uvicorn", "uvloop", "httptools", "orjson")


def machine_line(when: str, packages: tuple[str, ...], load: float) -> str:
    """The first line of a bench's output: when, on what, with which versions and how loaded it ran."""
    return (
        f"{when}, {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}; "
        + ", ".join(f"{p} {version(p)}" for p in packages)
        + f"; 1-minute load average before: {load:.2f}"
    )


@dataclass
class Measured:
    latencies_ms: list[float]
    seconds: float
    server_cpu_s: float = float("nan")  # CPU time the server's processes spent meanwhile

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p99(self) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]

    @property
    def per_second(self) -> float:
        return len(self.latencies_ms) / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.server_cpu_s / len(self.latencies_ms)


def write_pipeline(folder: Path, name: str, rows: int = 5000, seed: int = 0) -> Path:
    """A CSV of ``rows`` synthetic rows (binary target from a noisy linear score) and a spec for ``name``."""
    import pandas as pd
    import yaml

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(FEATURES)))
    score = x @ rng.normal(size=len(FEATURES)) + 0.5 * np.sin(3 * x[:, 0]) + rng.normal(scale=0.5, size=rows)
    frame = pd.DataFrame(x, columns=FEATURES).assign(label=(score > 0).astype(int))
    frame.to_csv(folder / "data.csv", index=False)
    estimator, params = MODELS[name]
    spec = {
        "name": f"bench_{name}",
        "task": "binary",
        "target": "label",
        "source": {"path": "data.csv"},
        "schema": {  # bounds every row meets: the endpoint checks each row against them
            "columns": {**{c: {"dtype": "float", "ge": -100, "le": 100} for c in FEATURES}, "label": {"dtype": "int"}}
        },
        "model": {"estimator": estimator, "params": params},
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def register(spec_path: Path, tracking_uri: str, artifact_root: Path) -> str:
    """Fit the spec's model on its data and register it as ``champion``, with the holdout inputs
    ``evaluation_report`` would store, as the pipeline's assets do."""
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient

    from mlops_assets.model.pipeline_model import fit_pipeline_model
    from mlops_assets.model.pyfunc import log_pipeline_model
    from mlops_assets.model.training import make_estimator
    from mlops_assets.spec import load_spec

    spec = load_spec(spec_path)
    frame = pd.read_csv(spec_path.parent / "data.csv")
    holdout = frame.sample(frac=HOLDOUT_SHARE, random_state=0)
    model = fit_pipeline_model(spec, frame.drop(holdout.index), make_estimator(spec, str(spec_path)))
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment = client.create_experiment(spec.name, artifact_location=str(artifact_root / spec.name))
    mlflow.set_tracking_uri(tracking_uri)
    with mlflow.start_run(experiment_id=experiment) as run:
        info = log_pipeline_model(model, spec, frame)
    log_holdout_inputs(tracking_uri, artifact_root, run.info.run_id, holdout[spec.input_columns])
    client.set_registered_model_alias(spec.name, "champion", str(info.registered_model_version))
    return str(info.registered_model_version)


def log_holdout_inputs(tracking_uri: str, artifact_root: Path, run_id: str, inputs) -> None:
    """Store ``inputs`` as ``evaluation_report`` stores a version's holdout (the same calls): the endpoint
    checks its compiled fast path against them before serving with it."""
    from mlops_assets.assets.evaluation_report import holdout_inputs_parquet
    from mlops_assets.data.locations import EVALUATION_FOLDER, HOLDOUT_INPUTS
    from mlops_assets.resources.mlflow_registry import MlflowRegistry

    registry = MlflowRegistry(uri=tracking_uri, artifact_root=str(artifact_root))
    registry.log_artifacts(run_id, {HOLDOUT_INPUTS: holdout_inputs_parquet(inputs)}, EVALUATION_FOLDER)


def time_calls(fn, args: argparse.Namespace) -> Measured:
    """Call ``fn`` until ``args.requests`` calls or ``args.seconds`` pass (after a warm-up)."""
    for _ in range(WARMUP_REQUESTS):
        fn()
    latencies = []
    started = time.perf_counter()
    deadline = started + args.seconds
    while len(latencies) < args.requests and time.perf_counter() < deadline:
        begin = time.perf_counter_ns()
        fn()
        latencies.append((time.perf_counter_ns() - begin) / 1e6)
    return Measured(latencies, time.perf_counter() - started)


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


class Connection:
    """One keep-alive HTTP/1.1 connection with one request in flight; responses need a Content-Length."""

    def __init__(self, port: int, request: bytes):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.request = request
        self.buffer = b""
        self.sent_ns = 0

    def send(self) -> None:
        self.buffer = b""
        self.sent_ns = time.perf_counter_ns()
        self.sock.sendall(self.request)

    def receive_response(self) -> Response | None:
        """The response once it is complete, else ``None`` (call again when the socket is readable)."""
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        status_line, *lines = self.buffer[:end].decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines)
        length = int(headers["content-length"])
        if len(self.buffer) < end + 4 + length:
            return None
        return Response(int(status_line.split()[1]), headers, self.buffer[end + 4 : end + 4 + length])

    def receive(self) -> bytes | None:
        """The response body once complete, else ``None``; raise on a non-200 answer."""
        response = self.receive_response()
        if response is not None and response.status != 200:
            raise RuntimeError(f"the server answered {response.status}: {response.body!r}")
        return None if response is None else response.body


def load(server: Server, body: bytes, connections: int, requests: int, seconds: float) -> tuple[Measured, bytes]:
    """Keep ``connections`` requests in flight until ``requests`` are answered or ``seconds`` pass (after a
    warm-up); the latency of one request runs from its send to the last byte of its response."""
    port = int(server.url.rsplit(":", 1)[1])
    request = (
        f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    clients = [Connection(port, request) for _ in range(connections)]
    selector = selectors.DefaultSelector()
    for client in clients:
        selector.register(client.sock, selectors.EVENT_READ, client)
        client.send()
    latencies: list[float] = []
    answered, last_body, cpu_started = 0, b"", 0.0
    started = time.perf_counter()
    deadline = started + seconds + 60  # the warm-up gets its own minute at most
    gc.disable()  # a collection in the client would show up as server latency
    try:
        while len(latencies) < requests and time.perf_counter() < deadline:
            events = selector.select(timeout=10)
            if not events:
                raise TimeoutError(f"no response from port {port} within 10 s")
            for key, _ in events:
                client = key.data
                answer = client.receive()
                if answer is None:
                    continue
                answered += 1
                last_body = answer
                if answered == WARMUP_REQUESTS:
                    latencies.clear()
                    cpu_started = server.cpu_seconds()
                    started = time.perf_counter()
                    deadline = started + seconds
                elif answered > WARMUP_REQUESTS:
                    latencies.append((time.perf_counter_ns() - client.sent_ns) / 1e6)
                client.send()
        elapsed = time.perf_counter() - started
        cpu = server.cpu_seconds() - cpu_started
    finally:
        gc.enable()
        for client in clients:
            client.sock.close()
    return Measured(latencies, elapsed, cpu), last_body


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Server:
    url: str
    ready_s: float  # from start to the first 200 on /ping
    process_group: int

    def cpu_seconds(self) -> float:
        """User + system CPU time of every live process in the server's process group."""
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == self.process_group:  # pgrp; utime and stime follow at 11 and 12
                    total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def process(command: list[str], log_path: Path, url_of, timeout_s: float = 120.0, env: dict | None = None):
    """Run a server in its own process group until the block ends; ``url_of()`` is its base URL once known."""
    with open(log_path, "wb") as output:
        proc = subprocess.Popen(command, stdout=output, stderr=output, env=env, cwd=REPO, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{command[:4]} exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{command[:4]} did not answer /ping within {timeout_s} s")
            url = url_of()
            if url:
                with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/ping", timeout=2) as answer:
                    if answer.status == 200:
                        break
            time.sleep(0.2)
        yield Server(url, time.monotonic() - (deadline - timeout_s), proc.pid)
    finally:  # the whole process group: `mlflow models serve` runs its server as a child process
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(20)


def state_url(path: Path):
    """Reads the server's URL from the state file it writes once bound."""

    def url() -> str | None:
        try:
            return json.loads(path.read_text())["url"]
        except (OSError, ValueError, KeyError):
            return None

    return url


def serve_without_log(spec_path: str, tracking_uri: str, state_path: str) -> None:
    """``mlops-assets serve`` without the inference log: the same app, schema checks, fast path and server
    settings."""
    from mlops_assets.serving.app import create_app
    from mlops_assets.serving.loading import champion_loader
    from mlops_assets.serving.row_checks import column_rules
    from mlops_assets.serving.run import bind, run
    from mlops_assets.spec import load_spec

    spec = load_spec(spec_path)
    dtypes = {c: spec.schema_.columns[c].dtype for c in spec.input_columns}
    app = create_app(
        spec.name,
        dtypes,
        champion_loader(spec.name, tracking_uri, spec.deployment.fast_path_tolerance),
        schema=column_rules(spec.schema_.columns),
        on_invalid=spec.deployment.on_invalid,
    )
    sock = bind("127.0.0.1", 0)
    Path(state_path).write_text(json.dumps({"url": f"http://127.0.0.1:{sock.getsockname()[1]}"}))
    run(app, sock)


def wait_for_quiet_machine(max_load: float, wait_minutes: float) -> float:
    deadline = time.monotonic() + wait_minutes * 60
    while (load_1m := os.getloadavg()[0]) > max_load and time.monotonic() < deadline:
        print(f"load average {load_1m:.2f} > {max_load}: waiting a minute", flush=True)
        time.sleep(60)
    return load_1m


@dataclass
class Case:
    """One registered model and the request sent to every server."""

    name: str
    spec_path: Path
    version: str
    model: Any
    compiled: Any  # the verified fast path the endpoint serves with, or None
    fast_path_check: str
    body: bytes
    columns: dict[str, np.ndarray]
    expected: dict[str, list]


def prepare(name: str, folder: Path, tracking_uri: str) -> Case:
    from mlops_assets.serving.loading import version_loader
    from mlops_assets.spec import load_spec

    spec_path = write_pipeline(folder, name)
    model_version = register(spec_path, tracking_uri, folder / "artifacts")
    tolerance = load_spec(spec_path).deployment.fast_path_tolerance
    loaded = version_loader(f"bench_{name}", tracking_uri, tolerance)(model_version)
    model = loaded.model
    row = np.random.default_rng(1).normal(size=len(FEATURES)).round(6).tolist()
    body = json.dumps({"dataframe_split": {"columns": FEATURES, "data": [row]}}).encode()
    columns = {c: np.array([v]) for c, v in zip(FEATURES, row, strict=True)}
    expected = {"predictions": model.predict(columns).labels.tolist()}
    print(f"{name}: {loaded.fast_path_check}", flush=True)
    return Case(name, spec_path, model_version, model, loaded.compiled, loaded.fast_path_check, body, columns, expected)


def in_process(case: Case, args: argparse.Namespace) -> list[tuple]:
    """Rows of (model, what, connections, Measured) for the model called in this process."""
    from mlops_assets.serving.payload import coerce_columns, parse_payload
    from mlops_assets.serving.row_checks import RowChecks, column_rules
    from mlops_assets.spec import load_spec

    dtypes = dict.fromkeys(FEATURES, "float")
    checks = RowChecks(dtypes, column_rules(load_spec(case.spec_path).schema_.columns))
    served = case.compiled or case.model

    def checked_predict():
        coerced = coerce_columns(parse_payload(case.body), dtypes)
        if checks.check(coerced.columns, coerced.numeric, coerced.n_rows, coerced.violations) is not None:
            raise RuntimeError("the bench's row breaks its schema")
        return served.predict(coerced.columns)

    python = time_calls(lambda: case.model.predict(case.columns), args)
    rows = [(case.name, "in-process `PipelineModel.predict`", 1, python)]
    if case.compiled is not None:
        rows.append(
            (case.name, "in-process compiled predict", 1, time_calls(lambda: case.compiled.predict(case.columns), args))
        )
    rows.append(
        (
            case.name,
            "in-process parse + coerce + served predict",
            1,
            time_calls(lambda: served.predict(coerce_columns(parse_payload(case.body), dtypes)[0]), args),
        )
    )
    rows.append(
        (case.name, "in-process parse + coerce + schema check + served predict", 1, time_calls(checked_predict, args))
    )
    return rows


def over_http(case: Case, folder: Path, tracking_uri: str, args: argparse.Namespace) -> list[tuple]:
    """Rows of (model, server, connections, Measured) for our endpoint and ``mlflow models serve``.

    Ours runs as ``args.replicas`` processes with the log and as many without, measured in turn and pooled:
    two identical server processes differed by up to 10% in CPU per request, more than the log costs.
    """
    results = []
    bin_dir = str(Path(sys.executable).parent)  # `mlflow models serve` starts `uvicorn` from the PATH
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    name, spec = case.name, str(case.spec_path)

    def log_on(i: int) -> list[str]:
        serve = [sys.executable, "-m", "mlops_assets.cli", "serve", spec, "--port", "0", "--tracking-uri", tracking_uri]
        return [*serve, "--log-dir", str(folder / f"log-{name}-{i}"), "--state-file", str(folder / f"{name}-on{i}")]

    def log_off(i: int) -> list[str]:
        return [sys.executable, __file__, "--serve-without-log", spec, tracking_uri, str(folder / f"{name}-off{i}")]

    port = free_port()
    mlflow_serve = [str(Path(sys.executable).with_name("mlflow")), "models", "serve", "--env-manager", "local"]
    mlflow_serve += ["-m", f"models:/bench_{name}/{case.version}", "-h", "127.0.0.1", "-p", str(port)]

    def measure(servers: dict[str, list[Server]], rounds: int) -> None:
        """Alternate between the servers in short windows, in turn first and last, so that a change in the
        background load hits them alike."""
        order = [(label, server) for label, replicas in servers.items() for server in replicas]
        windows = rounds * len(order) // len(servers)
        for connections in args.connections:
            pooled = {label: Measured([], 0.0, 0.0) for label in servers}
            for turn in range(rounds):
                for label, server in order if turn % 2 == 0 else order[::-1]:
                    measured, answer = load(
                        server, case.body, connections, args.requests // windows, args.seconds / windows
                    )
                    if json.loads(answer) != case.expected:
                        raise RuntimeError(f"{label} answered {answer!r}, expected {case.expected}")
                    pooled[label].latencies_ms += measured.latencies_ms
                    pooled[label].seconds += measured.seconds
                    pooled[label].server_cpu_s += measured.server_cpu_s
            for label, measured in pooled.items():
                results.append((name, label, connections, measured))
                print(format_row(results[-1]), flush=True)

    with contextlib.ExitStack() as stack:
        ours: dict[str, list[Server]] = {"ours, inference log on (CLI)": [], "ours, inference log off": []}
        for i in range(args.replicas):
            for label, command in (
                ("ours, inference log on (CLI)", log_on(i)),
                ("ours, inference log off", log_off(i)),
            ):
                state = Path(command[-1])  # both commands end with the file the server writes its URL to
                server = process(command, state.with_suffix(".log"), state_url(state), env=env)
                ours[label].append(stack.enter_context(server))
        ready = ", ".join(f"{s.ready_s:.1f}" for replicas in ours.values() for s in replicas)
        print(f"{name}: ours ready in {ready} s", flush=True)
        measure(ours, args.rounds)
    mlflow_url = f"http://127.0.0.1:{port}"
    with process(mlflow_serve, folder / f"{name}-mlflow.log", lambda: mlflow_url, env=env) as mlflow:
        print(f"{name}: mlflow models serve ready in {mlflow.ready_s:.1f} s", flush=True)
        measure({"`mlflow models serve`": [mlflow]}, 1)
    return results


def format_row(result: tuple) -> str:
    name, server, connections, measured = result
    cpu = "" if np.isnan(measured.server_cpu_s) else f"{measured.cpu_ms_per_request:.3f}"
    return (
        f"| {name} | {server} | {connections} | {measured.p50:.3f} | {measured.p99:.3f} "
        f"| {measured.per_second:,.0f} | {cpu} | {len(measured.latencies_ms):,} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0, help="measuring time per cell (after the warm-ups)")
    parser.add_argument("--requests", type=int, default=20_000, help="most requests per cell")
    parser.add_argument("--rounds", type=int, default=4, help="alternating windows per cell for our two servers")
    parser.add_argument("--replicas", type=int, default=2, help="processes of each of our two servers")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--max-load", type=float, default=1.2, help="wait until the 1-minute load is below this")
    parser.add_argument("--wait-minutes", type=float, default=10.0)
    parser.add_argument("--serve-without-log", nargs=3, metavar=("SPEC", "TRACKING_URI", "STATE_FILE"))
    args = parser.parse_args()
    if args.serve_without_log:
        serve_without_log(*args.serve_without_log)
        return

    load_before = wait_for_quiet_machine(args.max_load, args.wait_minutes)
    print(machine_line(str(dt.date.today()), PACKAGES, load_before), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        folder = Path(tmp)
        tracking_uri = f"sqlite:///{folder / 'mlflow.db'}"
        cases = [prepare(name, folder, tracking_uri) for name in args.models]
        results = [row for case in cases for row in in_process(case, args)]
        results += [row for case in cases for row in over_http(case, folder, tracking_uri, args)]
    results.sort(key=lambda row: args.models.index(row[0]))
    print(f"\n1-minute load average after: {os.getloadavg()[0]:.2f} (this run's own servers and client included)\n")
    print("| model | server | connections | p50 ms | p99 ms | requests/s | server CPU ms/request | requests |")
    print("|---|---|---|---|---|---|---|---|")
    for result in results:
        print(format_row(result))
    print()
    cells = {(name, server, connections): measured for name, server, connections, measured in results}
    for name in args.models:
        predict = cells[(name, "in-process `PipelineModel.predict`", 1)]
        compiled = cells.get((name, "in-process compiled predict", 1))
        for server in ("ours, inference log on (CLI)", "ours, inference log off"):
            print(
                f"- {name}, {server}: p50 {cells[(name, server, 1)].p50 - predict.p50:+.3f} ms over in-process "
                "`PipelineModel.predict`"
                + (f", {cells[(name, server, 1)].p50 - compiled.p50:+.3f} ms over compiled predict" if compiled else "")
            )
        for connections in args.connections:
            on, off = (cells[(name, f"ours, inference log {s}", connections)] for s in ("on (CLI)", "off"))
            mlflow = cells[(name, "`mlflow models serve`", connections)]
            print(
                f"- {name}, {connections} connection(s): {on.per_second / mlflow.per_second:.1f}x the requests/s of "
                f"mlflow models serve; the log costs {1 - on.per_second / off.per_second:.1%} of throughput and "
                f"{on.cpu_ms_per_request / off.cpu_ms_per_request - 1:.1%} more server CPU per request"
            )


if __name__ == "__main__":
    main()
