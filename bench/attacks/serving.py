"""The scoring endpoint (issue 19, findings 1, 5, 8, 11 and 12), attacked over loopback HTTP.

The endpoint is ``create_app`` + ``run`` (the settings ``mlops-assets serve`` uses) in a process of its own,
serving the bundled breast-cancer model (LogisticRegression, C=0.5, fitted in that process) with its inference
log in the attack's folder; the state-file attack runs the real ``mlops-assets serve`` on a registered champion
and ``mlops-assets stop``. Deadlines are shorter than the defaults (10 s head, 30 s body) so that each attack
takes seconds; nothing else differs.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from attacks.attack import Attack, Outcome

REPO = Path(__file__).resolve().parents[2]
SPEC_PATH = REPO / "pipelines" / "breast_cancer.yaml"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "bench"), os.environ.get("PYTHONPATH", "")])}


def serve(settings: dict) -> None:
    """The endpoint process: ``settings`` name the port file, the log folder, deadlines, the snapshot interval,
    a state file to record the process in, and a size past which the disk refuses files (``file_limit``)."""
    import resource

    from sklearn.linear_model import LogisticRegression

    from mlops_assets.data.snapshot import read_source
    from mlops_assets.model.pipeline_model import fit_pipeline_model
    from mlops_assets.serving.app import LoadedModel, create_app
    from mlops_assets.serving.endpoint_state import write_state
    from mlops_assets.serving.inference_log import InferenceLogWriter, log_schema
    from mlops_assets.serving.run import bind, run
    from mlops_assets.spec import load_spec

    spec = load_spec(SPEC_PATH)
    model = LoadedModel(
        "2", fit_pipeline_model(spec, read_source(spec, SPEC_PATH.parent).frame, LogisticRegression(C=0.5))
    )
    dtypes = {c: spec.schema_.columns[c].dtype for c in spec.input_columns}
    log = InferenceLogWriter(
        Path(settings["log_dir"]), log_schema(dtypes, spec.task, spec.id_column), flush_seconds=0.5
    )
    app = create_app(
        spec.name,
        dtypes,
        lambda: model,
        log,
        admin_token="attack",
        id_column=spec.id_column,
        head_timeout_s=settings.get("head_timeout_s", 10.0),
        body_timeout_s=settings.get("body_timeout_s", 30.0),
        telemetry_interval_s=settings.get("telemetry_interval_s", 60.0),
    )
    sock = bind("127.0.0.1", 0)
    sock.listen(1024)
    if settings.get("state_file"):
        write_state(settings["state_file"], {"pid": os.getpid(), "url": f"http://127.0.0.1:{sock.getsockname()[1]}"})
    Path(settings["port_file"]).write_text(str(sock.getsockname()[1]))
    if settings.get("file_limit"):  # a full disk: writing past the limit fails (EFBIG) instead of killing us
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (settings["file_limit"], settings["file_limit"]))
    run(app, sock)


@contextmanager
def endpoint(folder: Path, **settings) -> Iterator[tuple[int, subprocess.Popen]]:
    """An endpoint process serving with ``settings`` (see ``serve``), its log in ``folder/log``; its port once
    it answers ``/ping``. Stopped with SIGTERM (it writes its last snapshot) on leaving."""
    settings = {"port_file": str(folder / "port"), "log_dir": str(folder / "log"), **settings}
    command = [sys.executable, __file__, json.dumps(settings)]
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (folder / "port").exists() or not (folder / "port").read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the endpoint did not start")
            time.sleep(0.1)
        port = int((folder / "port").read_text())
        while call(port, "GET", "/ping")[0] != 200:
            time.sleep(0.1)
        yield port, process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(60)


def call(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """Status and body of one request on a connection of its own (status 0: refused)."""
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.request(method, path, body, headers or {"Content-Type": "application/json"})
        response = connection.getresponse()
        data = response.read()
        connection.close()
        return response.status, data
    except ConnectionError:
        return 0, b""


def rows(n: int) -> bytes:
    """``n`` rows of the bundled data as one ``dataframe_split`` request."""
    import pandas as pd

    frame = pd.read_csv(REPO / "pipelines" / "data" / "breast_cancer" / "features.csv").head(n)
    return json.dumps({"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}}).encode()


def stall(port: int, sent: bytes) -> bytes:
    """Send ``sent`` and nothing more; what the server answers before it closes the connection."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(sent)
        sock.settimeout(60)
        while data := sock.recv(65536):
            answer += data
    return answer


def slow_clients_vs_slo(folder: Path) -> Outcome:
    """300 good requests, then 20 connections that send a ``POST /invocations`` head and stall; the SLO checks
    (250 ms p99, 1% errors) and the rollback decision on the endpoint's own snapshots."""
    from mlops_assets.monitoring.slo import judge_slo, rollback_decision
    from mlops_assets.resources.artifact_store import FsspecArtifactStore
    from mlops_assets.serving.telemetry import stored_snapshots, summarise
    from mlops_assets.spec.operations import Slo

    promoted = time.time()
    with endpoint(folder, head_timeout_s=2.0) as (port, _):
        body = rows(1)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(300):
            connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            connection.getresponse().read()
        answers: list[bytes] = []
        head = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"  # never finished
        threads = [threading.Thread(target=lambda: answers.append(stall(port, head))) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        metrics = call(port, "GET", "/metrics")[1].decode()
    timed_out = sum(answer.startswith(b"HTTP/1.1 408") for answer in answers)
    snapshots = stored_snapshots(FsspecArtifactStore(root=str(folder)), "log", 0)
    slo = Slo(latency_p99_ms=250, max_error_rate=0.01, min_requests=100, rollback=True)
    summary = summarise(snapshots, promoted - 60, time.time())
    verdicts = judge_slo(slo, summary)
    promoted_at = dt.datetime.fromtimestamp(promoted - 30, dt.UTC).isoformat()
    decision = rollback_decision(slo, snapshots, verdicts, "2", promoted_at, "1")
    shown = 'mlops_incomplete_requests_total{part="head",route="/invocations"} 20.0' in metrics
    p99 = "-" if summary["latency_p99_s"] is None else f"{summary['latency_p99_s'] * 1000:.3g}"
    checks = ", ".join(f"{v.check} {'passed' if v.passed else 'FAILED'}" for v in verdicts)
    incomplete = sum(summary.get("incomplete_requests", {}).values())
    observed = (
        f"{timed_out}/20 got 408; SLO window: {summary['requests']} requests, p99 {p99} ms, error rate "
        f"{summary['error_rate']:.2%}, {incomplete} incomplete (in /metrics: {shown}); {checks}; "
        f"rollback: {decision.target or 'none'}"
    )
    held = timed_out == 20 and shown and all(v.passed for v in verdicts) and decision.target is None
    return Outcome(observed, held)


def hostile_bodies() -> list[tuple[str, bytes, str]]:
    """A million columns the model ignores, beside its own, in each form the endpoint parses (10-14 MB each,
    under the 16 MiB limit); the issue's was a 13.9 MB ``dataframe_split``."""
    import orjson
    import pandas as pd

    own = list(pd.read_csv(REPO / "pipelines" / "data" / "breast_cancer" / "features.csv", nrows=1).columns)
    names = [*own, *(f"x{i:06d}" for i in range(1_000_000))]
    record = dict.fromkeys(names, 0)
    return [
        (
            "split",
            orjson.dumps({"dataframe_split": {"columns": names, "data": [[0] * len(names)]}}),
            "application/json",
        ),
        ("records", orjson.dumps({"dataframe_records": [dict(list(record.items())[:600_000])]}), "application/json"),
        ("inputs", orjson.dumps({"inputs": record}), "application/json"),
        ("instances", orjson.dumps({"instances": [record]}), "application/json"),
        ("csv", (",".join(names) + "\n" + ",".join("0" for _ in names) + "\n").encode(), "text/csv"),
    ]


def million_ignored_columns(folder: Path) -> Outcome:
    """Each form of a million ignored columns, twice, while another client pings every 10 ms."""
    bodies, answers, done = hostile_bodies(), [], threading.Event()
    with endpoint(folder) as (port, _):

        def attack() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            for _ in range(2):
                for form, body, content_type in bodies:
                    started = time.monotonic()
                    connection.request("POST", "/invocations", body, {"Content-Type": content_type})
                    response = connection.getresponse()
                    response.read()
                    answers.append((form, response.status, time.monotonic() - started))
            done.set()

        attacker = threading.Thread(target=attack)
        attacker.start()
        pings, connection = [], http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while not done.is_set():
            started = time.monotonic()
            connection.request("GET", "/ping")
            connection.getresponse().read()
            pings.append(time.monotonic() - started)
            time.sleep(0.01)
        attacker.join()
    statuses = sorted({f"{form} {status}" for form, status, _ in answers})
    slowest = max(seconds for _, _, seconds in answers)
    observed = (
        f"{', '.join(statuses)}; slowest answer {slowest:.2f} s; /ping: {len(pings)} answered, the slowest in "
        f"{max(pings) * 1000:.0f} ms"
    )
    refused = all(status == 400 for _, status, _ in answers)
    return Outcome(observed, refused and slowest < 2.0 and max(pings) < 0.5)


def reuse_pid(pid: int) -> subprocess.Popen | None:
    """A process that is not an endpoint, given ``pid`` (free again) by the kernel, as after a crash: the next pid
    set through ``/proc/sys/kernel/ns_last_pid`` (root only); ``None`` where that cannot be done."""
    for _ in range(20):
        try:
            Path("/proc/sys/kernel/ns_last_pid").write_text(str(pid - 1))
        except OSError:
            return None
        process = subprocess.Popen(["sleep", "120"])
        if process.pid == pid:
            return process
        process.kill()
        process.wait()
    return None


def stop_reused_pid(folder: Path) -> Outcome:
    """An endpoint records itself in its state file and crashes (kill -9); its pid goes to another process;
    ``mlops-assets stop`` runs."""
    home = folder / "home"
    state = home / "endpoints" / "breast_cancer.json"
    state.parent.mkdir(parents=True)
    with endpoint(folder, state_file=str(state)) as (_, process):
        process.kill()  # the crash: the state file keeps the pid
        process.wait()
    unrelated = reuse_pid(process.pid)
    how = "the kernel gave its pid to `sleep`"
    if unrelated is None:  # no ns_last_pid: the pid in the file is made another process's instead
        unrelated = subprocess.Popen(["sleep", "120"])
        recorded = json.loads(state.read_text())
        state.write_text(json.dumps({**recorded, "pid": unrelated.pid}))
        how = "the file's pid is now another process's (ns_last_pid not writable)"
    try:
        command = [sys.executable, "-m", "mlops_assets.cli", "stop", str(SPEC_PATH)]
        done = subprocess.run(
            command, env={**ENV, "MLOPS_HOME": str(home)}, capture_output=True, text=True, timeout=120
        )
        time.sleep(0.5)
        alive = unrelated.poll() is None
        said = (done.stdout.strip() or done.stderr.strip()).splitlines()[-1:]
        observed = f"{how}; stop said {said[0]!r} (exit {done.returncode}); the unrelated process " + (
            "still runs" if alive else f"was killed ({unrelated.returncode})"
        )
        return Outcome(observed, alive and done.returncode == 0)
    finally:
        unrelated.kill()
        unrelated.wait()


def state_file_modes(folder: Path) -> Outcome:
    """The embedded default made by its resources, a champion registered, ``mlops-assets serve`` scoring and
    logging, an audit record: the modes of what is under MLOPS_HOME, under the usual umask (022)."""
    home = folder / "home"
    saved = {name: os.environ.get(name) for name in ("MLOPS_HOME", "MLFLOW_TRACKING_URI")}
    os.environ["MLOPS_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    previous_umask = os.umask(0o022)
    try:
        layout = register_champion()
        command = [sys.executable, "-m", "mlops_assets.cli", "serve", str(SPEC_PATH), "--host", "127.0.0.1"]
        command += ["--port", "0", "--tracking-uri", layout.tracking_uri]
        process = subprocess.Popen(command, env={**ENV, "MLOPS_HOME": str(home)}, stdout=subprocess.DEVNULL)
        try:
            from mlops_assets.serving.endpoint_state import read_state

            deadline = time.monotonic() + 120
            while not (url := read_state(layout.endpoints, "breast_cancer").get("url")):
                if process.poll() is not None or time.monotonic() > deadline:
                    return Outcome("`mlops-assets serve` did not start", False)
                time.sleep(0.2)
            port = int(url.rsplit(":", 1)[1])
            while call(port, "GET", "/ping")[0] != 200:
                time.sleep(0.2)
            scored = [call(port, "POST", "/invocations", rows(5))[0] for _ in range(3)]
        finally:
            process.terminate()
            process.wait(60)
    finally:
        os.umask(previous_umask)
        for name, value in saved.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value
    found = modes(home)
    state = {path: mode for path, mode in found.items() if not path.startswith(("mlartifacts/", "mlflow.db-"))}
    wrong = sorted(f"{path} {mode:o}" for path, mode in state.items() if mode not in (0o600, 0o700))
    named = {
        "mlflow.db": found.get("mlflow.db"),
        "trail": next((m for p, m in found.items() if "/trail/" in p and p.endswith(".json")), None),
        "inference log": next((m for p, m in found.items() if p.endswith(".parquet")), None),
        "MLOPS_HOME": found["."],
    }
    shown = ", ".join(f"{name} {'-' if mode is None else f'{mode:o}'}" for name, mode in named.items())
    observed = f"scored {scored}; {shown}; {len(state)} paths checked" + (
        f", {len(wrong)} open to others: {', '.join(wrong[:4])}" if wrong else ", none open to others"
    )
    held = scored == [200] * 3 and not wrong and None not in named.values() and found["."] == 0o700
    return Outcome(observed, held)


def register_champion():
    """The embedded default under ``MLOPS_HOME`` as its resources make it, with breast_cancer version 1 registered
    and promoted, and an audit record; its ``LocalLayout``."""
    from sklearn.linear_model import LogisticRegression

    from mlops_assets.data.snapshot import read_source
    from mlops_assets.governance.audit import append_event
    from mlops_assets.local.layout import LocalLayout
    from mlops_assets.model.pipeline_model import fit_pipeline_model
    from mlops_assets.model.registry import MlflowRegistryClient
    from mlops_assets.naming import TrailEvent
    from mlops_assets.resources import local_resources
    from mlops_assets.spec import load_spec

    layout = LocalLayout.from_env()
    resources = local_resources(layout)
    spec = load_spec(SPEC_PATH)
    data = read_source(spec, SPEC_PATH.parent).frame
    model = fit_pipeline_model(spec, data, LogisticRegression(max_iter=1000))
    registry = MlflowRegistryClient(layout.tracking_uri, str(layout.mlflow_artifacts))
    run = {"tags": {}, "params": {}, "metrics": {}, "environment": {}}
    example = data[spec.input_columns].head(3)
    registered = registry.register(spec, model, example, registry.experiment(spec.name), run, {})
    registry.promote(spec.name, registered.version, "attack bench")
    append_event(resources.store, spec.name, TrailEvent.trigger, {"trained": True})
    return layout


def modes(root: Path) -> dict[str, int]:
    """Permission bits of ``root`` (as ``.``) and of everything under it, by path relative to it."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for folder, folders, files in os.walk(root):
        for name in folders + files:
            path = Path(folder) / name
            found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def full_disk_pending_rows(folder: Path) -> Outcome:
    """The inference log on a disk that refuses every file (writes past 4 KiB fail, as on a full filesystem);
    100,000 rows scored in 2,000 requests, then ``/admin/status`` and ``/metrics`` polled 300 times."""
    with endpoint(folder, file_limit=4096) as (port, _):
        body = rows(50)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(2000):
            connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            connection.getresponse().read()
        readings = []
        for i in range(300):
            if i % 2:
                document = json.loads(call(port, "GET", "/admin/status", None, {"Authorization": "Bearer attack"})[1])
                readings.append(document["log"]["pending_rows"])
            else:
                text = call(port, "GET", "/metrics")[1].decode()
                line = next(x for x in text.splitlines() if x.startswith('mlops_log_pending_rows{log="inference"}'))
                readings.append(int(float(line.rsplit(" ", 1)[1])))
            time.sleep(0.01)
        final = json.loads(call(port, "GET", "/admin/status", None, {"Authorization": "Bearer attack"})[1])["log"]
    zeros = readings.count(0)
    observed = (
        f"{len(readings)} polls while 100,000 rows waited: {zeros} read 0, the others "
        f"{min((r for r in readings if r), default=0):,}-{max(readings):,}; written {final['rows_written']}, "
        f"dropped {final['dropped_rows']}, last error {final['last_error'].partition(': ')[2][:50]!r}"
    )
    return Outcome(observed, zeros == 0 and final["rows_written"] == 0 and final["dropped_rows"] == 0)


ATTACKS = [
    Attack(
        "serving: slow clients vs the SLO",
        "408s to stalled clients counted apart; both SLO checks pass, no rollback",
        slow_clients_vs_slo,
    ),
    Attack(
        "serving: a million ignored columns",
        "every form refused (400) at once; /ping within 0.5 s throughout",
        million_ignored_columns,
    ),
    Attack(
        "serving: stop after a crash and pid reuse",
        "stop signals only the process it started; the pid's new owner lives",
        stop_reused_pid,
    ),
    Attack(
        "serving: state file modes",
        "state files 0600, folders 0700, MLOPS_HOME 0700",
        state_file_modes,
    ),
    Attack(
        "serving: pending rows on a full disk",
        "pending_rows never reads 0 while rows wait; nothing written or lost",
        full_disk_pending_rows,
    ),
]


if __name__ == "__main__":
    serve(json.loads(sys.argv[1]))
