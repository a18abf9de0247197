"""Single-row scoring latency and throughput: in-process ``predict``, our endpoint, ``mlflow models serve``.

One run registers a LogisticRegression, a 100-iteration HistGradientBoostingClassifier and a 100-tree
RandomForestClassifier (20 numeric features, synthetic data, fixed seed; 20% held out) in a temporary MLflow
SQLite store, then measures, on the same registered version: (a) ``PipelineModel.predict`` and the compiled fast
path in this process; (b) ``mlops-assets serve`` (the real CLI, which serves the compiled path once it has
reproduced the model on the holdout, inference log on) with 1 and with 2 worker processes, and, with
``--log-off``, the same app and server settings without the log; (c) ``mlflow models serve --env-manager
local`` with 1 and with 2 workers. Every feature is bounded (ge -100, le 100); the server without the log checks
each row against the bounds, as the CLI does once it passes the spec's schema to ``create_app``.

Every server runs at once; they are measured in short windows in turn, A B C D then D C B A, so that a change of
the machine's background load hits them alike. Each request is one distinct row of the holdout (the holdout's
rows in turn, as single-row ``dataframe_split`` bodies), over persistent loopback connections, one request in
flight per connection, at 1, 8 and 32 connections. The load comes from ``wrk`` (one thread, a Lua script cycling
through the bodies) when it is installed, else from this script's own raw-socket loop; with ``wrk`` the p50 and
p99 of a cell are the medians of its windows' (wrk reports percentiles per run). Server CPU per request: user +
system time of the server's process group (every worker), from /proc, over the requests of the window.
Usage: python bench/serving.py [--seconds 8] [--rounds 2] [--connections 1 8 32] [--models ...] [--client wrk]
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
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
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


class CyclingConnection(Connection):
    """A connection that sends ``requests`` in turn, from ``first`` on."""

    def __init__(self, port: int, requests: list[bytes], first: int = 0):
        super().__init__(port, requests[first % len(requests)])
        self.requests, self.next = requests, first

    def send(self) -> None:
        self.request = self.requests[self.next % len(self.requests)]
        self.next += 1
        super().send()


def load(
    server: Server, bodies: bytes | list[bytes], connections: int, requests: int, seconds: float
) -> tuple[Measured, bytes]:
    """Keep ``connections`` requests in flight until ``requests`` are answered or ``seconds`` pass (after a
    warm-up), each connection sending ``bodies`` in turn from its own offset; the latency of one request runs
    from its send to the last byte of its response."""
    port = int(server.url.rsplit(":", 1)[1])
    bodies = [bodies] if isinstance(bodies, bytes) else bodies  # one body, sent again and again
    head = f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
    messages = [f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body for body in bodies]
    clients = [CyclingConnection(port, messages, i * len(messages) // connections) for i in range(connections)]
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
    bodies: list[bytes]  # one per holdout row, the HTTP load's requests
    answers: list[list]  # the model's answer to each of ``bodies``


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
    import pandas as pd

    frame = pd.read_csv(spec_path.parent / "data.csv")
    holdout = frame.sample(frac=HOLDOUT_SHARE, random_state=0)[FEATURES].to_numpy()  # the rows never trained on
    bodies = [
        json.dumps({"dataframe_split": {"columns": FEATURES, "data": [row.tolist()]}}).encode() for row in holdout
    ]
    answers = model.predict({c: holdout[:, i] for i, c in enumerate(FEATURES)}).labels.tolist()
    print(f"{name}: {loaded.fast_path_check}; {len(bodies)} distinct holdout rows for the HTTP load", flush=True)
    return Case(
        name,
        spec_path,
        model_version,
        model,
        loaded.compiled,
        loaded.fast_path_check,
        body,
        columns,
        expected,
        bodies,
        [[answer] for answer in answers],
    )


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


WRK_SCRIPT = r"""
local requests, i = {}, 0
init = function(args)
  for line in io.lines(args[1]) do
    requests[#requests + 1] = wrk.format("POST", "/invocations", {["Content-Type"] = "application/json"}, line)
  end
  i = tonumber(args[2]) or 0
end
request = function()
  i = i % #requests + 1
  return requests[i]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK %d %d %d %d %d %d\n", summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""
OURS_1, OURS_2 = "ours, 1 worker (CLI)", "ours, 2 workers (CLI)"
OURS_OFF = "ours, 1 worker, inference log off"
MLFLOW_1, MLFLOW_2 = "`mlflow models serve`", "`mlflow models serve --workers 2`"


@dataclass
class Pooled:
    """A cell's windows: requests, seconds and server CPU summed; wrk's per-window percentiles kept."""

    requests: int = 0
    seconds: float = 0.0
    server_cpu_s: float = 0.0
    p50s: list[float] = field(default_factory=list)
    p99s: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)  # the Python client's, pooled

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else statistics.median(self.p50s)

    @property
    def p99(self) -> float:
        if self.latencies_ms:
            return Measured(self.latencies_ms, 1.0).p99
        return statistics.median(self.p99s)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.server_cpu_s / self.requests


def wrk_window(server: Server, bodies_file: Path, connections: int, seconds: float, offset: int) -> Pooled:
    """One window of ``wrk`` (one thread) against ``server``; raises on any error or non-200 answer."""
    script = bodies_file.with_name("bench.lua")
    if not script.exists():
        script.write_text(WRK_SCRIPT)
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(script)]
    cpu = server.cpu_seconds()
    output = subprocess.run(
        [*command, server.url, "--", str(bodies_file), str(offset)], capture_output=True, text=True, check=True
    ).stdout
    cpu = server.cpu_seconds() - cpu
    line = next(line for line in output.splitlines() if line.startswith("WRK "))
    requests, duration_us, p50_us, p99_us, errors, non_200 = map(int, line.split()[1:])
    if errors or non_200:
        raise RuntimeError(f"wrk against {server.url}: {errors} socket errors, {non_200} non-2xx answers:\n{output}")
    return Pooled(requests, duration_us / 1e6, cpu, [p50_us / 1000], [p99_us / 1000])


def check_answers(label: str, server: Server, case: Case, rows: int = 50) -> None:
    """The first ``rows`` holdout rows, one request each: every server must answer as the model does."""
    for body, expected in zip(case.bodies[:rows], case.answers[:rows], strict=False):
        request = urllib.request.Request(f"{server.url}/invocations", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            got = json.loads(answer.read())["predictions"]
        if got != expected:
            raise RuntimeError(f"{label} answered {got} for a holdout row, the model {expected}")


def over_http(case: Case, folder: Path, tracking_uri: str, args: argparse.Namespace) -> list[tuple]:
    """Rows of (model, server, connections, Pooled) for our endpoint with 1 and 2 workers and ``mlflow models
    serve`` with 1 and 2, all running at once and measured in alternating windows."""
    results = []
    bin_dir = str(Path(sys.executable).parent)  # `mlflow models serve` starts `uvicorn` from the PATH
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    name, spec = case.name, str(case.spec_path)
    bodies_file = folder / f"{name}-bodies.jsonl"
    bodies_file.write_bytes(b"\n".join(case.bodies) + b"\n")

    def ours(workers: int) -> list[str]:
        serve = [sys.executable, "-m", "mlops_assets.cli", "serve", spec, "--port", "0", "--tracking-uri", tracking_uri]
        state = str(folder / f"{name}-w{workers}")
        return [
            *serve,
            "--workers",
            str(workers),
            "--log-dir",
            str(folder / f"log-{name}-{workers}"),
            "--state-file",
            state,
        ]

    def mlflow(workers: int) -> tuple[list[str], str]:
        port = free_port()
        command = [str(Path(sys.executable).with_name("mlflow")), "models", "serve", "--env-manager", "local"]
        command += ["-m", f"models:/bench_{name}/{case.version}", "-h", "127.0.0.1", "-p", str(port)]
        return [*command, "--workers", str(workers)], f"http://127.0.0.1:{port}"

    def window(server: Server, connections: int, seconds: float, offset: int) -> Pooled:
        if args.client == "wrk":
            return wrk_window(server, bodies_file, connections, seconds, offset)
        measured, _ = load(server, case.bodies, connections, args.requests, seconds)
        return Pooled(
            len(measured.latencies_ms), measured.seconds, measured.server_cpu_s, latencies_ms=measured.latencies_ms
        )

    with contextlib.ExitStack() as stack:
        servers: dict[str, Server] = {}
        commands = [(OURS_1, ours(1)), (OURS_2, ours(2))]
        if args.log_off:
            commands.append(
                (
                    OURS_OFF,
                    [sys.executable, __file__, "--serve-without-log", spec, tracking_uri, str(folder / f"{name}-off")],
                )
            )
        for label, command in commands:
            state = Path(command[-1])  # each command ends with the file the server writes its URL to
            servers[label] = stack.enter_context(process(command, state.with_suffix(".log"), state_url(state), env=env))
        for workers, label in ((1, MLFLOW_1), (2, MLFLOW_2)):
            command, url = mlflow(workers)
            log_path = folder / f"{name}-mlflow-w{workers}.log"
            servers[label] = stack.enter_context(process(command, log_path, lambda url=url: url, env=env))
        print(
            f"{name}: ready in " + ", ".join(f"{label} {s.ready_s:.1f} s" for label, s in servers.items()), flush=True
        )
        for label, server in servers.items():
            check_answers(label, server, case)
            window(server, 8, 1.0, 0)  # warm-up: the first requests of a process are slower
        order = list(servers.items())
        for connections in args.connections:
            pooled = {label: Pooled() for label in servers}
            for turn in range(args.rounds):
                for label, server in order if turn % 2 == 0 else order[::-1]:
                    measured = window(server, connections, args.seconds / args.rounds, turn * 97)
                    cell = pooled[label]
                    cell.requests += measured.requests
                    cell.seconds += measured.seconds
                    cell.server_cpu_s += measured.server_cpu_s
                    cell.p50s += measured.p50s
                    cell.p99s += measured.p99s
                    cell.latencies_ms += measured.latencies_ms
            for label, cell in pooled.items():
                results.append((name, label, connections, cell))
                print(format_row(results[-1]), flush=True)
    return results


def format_row(result: tuple) -> str:
    name, server, connections, measured = result
    cpu = "" if np.isnan(measured.server_cpu_s) else f"{measured.cpu_ms_per_request:.3f}"
    requests = getattr(measured, "requests", None) or len(measured.latencies_ms)
    return (
        f"| {name} | {server} | {connections} | {measured.p50:.3f} | {measured.p99:.3f} "
        f"| {measured.per_second:,.0f} | {cpu} | {requests:,} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0, help="measuring time per cell (after the warm-ups)")
    parser.add_argument("--requests", type=int, default=20_000, help="most requests per cell")
    parser.add_argument("--rounds", type=int, default=2, help="windows per cell, in A B C D / D C B A order")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--client", choices=["wrk", "python"], default="wrk" if shutil.which("wrk") else "python")
    parser.add_argument("--log-off", action="store_true", help="also our server without the inference log")
    parser.add_argument("--skip-in-process", action="store_true")
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
        results = [] if args.skip_in_process else [row for case in cases for row in in_process(case, args)]
        results += [row for case in cases for row in over_http(case, folder, tracking_uri, args)]
    results.sort(key=lambda row: args.models.index(row[0]))
    print(f"\n1-minute load average after: {os.getloadavg()[0]:.2f} (this run's own servers and client included)")
    print(f"client: {args.client}; {args.rounds} windows per cell, {args.seconds / args.rounds:g} s each\n")
    print("| model | server | connections | p50 ms | p99 ms | requests/s | server CPU ms/request | requests |")
    print("|---|---|---|---|---|---|---|---|")
    for result in results:
        print(format_row(result))
    print()
    cells = {(name, server, connections): measured for name, server, connections, measured in results}
    for name in args.models:
        predict = cells.get((name, "in-process `PipelineModel.predict`", 1))
        if predict is not None:
            print(
                f"- {name}, {OURS_1}: p50 {cells[(name, OURS_1, 1)].p50 - predict.p50:+.3f} ms over in-process predict"
            )
        for connections in args.connections:
            one, two = cells[(name, OURS_1, connections)], cells[(name, OURS_2, connections)]
            mlflow_one, mlflow_two = cells[(name, MLFLOW_1, connections)], cells[(name, MLFLOW_2, connections)]
            print(
                f"- {name}, {connections} connection(s): 2 workers {two.per_second / one.per_second:.2f}x the "
                f"requests/s of 1; 1 worker {one.per_second / mlflow_one.per_second:.1f}x mlflow's 1 worker; "
                f"2 workers {two.per_second / mlflow_two.per_second:.1f}x mlflow's 2 workers"
            )


if __name__ == "__main__":
    main()
