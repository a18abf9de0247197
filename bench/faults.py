"""Faults under load: the endpoint and the trainer killed with SIGKILL while clients keep sending.

One run materializes the breast_cancer pipeline with the real Dagster CLI in a temporary ``MLOPS_HOME``, so
the deployer starts the endpoint as it does for a user. ``--clients`` threads then send single rows without
pause over keep-alive connections, each row with an id of its own; a client whose request fails counts it,
waits ``RETRY_S`` and reconnects.

- endpoint: ``--kills`` times, after ``--load-seconds`` of traffic, the endpoint process gets SIGKILL, and the
  endpoint supervisor sensor is ticked every ``--tick-seconds`` (in this process, through Dagster's API, as
  ``mlops-assets tick`` and the daemon tick it) until it has restarted the endpoint. Per kill: failed requests,
  the seconds from the kill to the next answer, and the rows lost: answered by the killed process, absent from
  the inference log (read after a clean stop at the end).
- trainer: a training is launched with the Dagster CLI; once its MLflow run is open, the training process
  gets SIGKILL. Reported: failed requests meanwhile, the MLflow run's status after, whether the champion moved.

Usage: python bench/faults.py [--clients 4] [--kills 5] [--load-seconds 5] [--tick-seconds 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from serving import machine_line

REPO = Path(__file__).resolve().parents[1]
PIPELINE = "breast_cancer"
PACKAGES = ("dagster", "mlflow", "scikit-learn", "uvicorn")
RETRY_S = 0.1  # a client's pause after a failed request
DEADLINE_S = 120.0  # the most any one wait of this bench lasts


@dataclass
class Answer:
    done: float  # time.monotonic() when answered or failed
    ok: bool
    row_id: str


@dataclass
class Clients:
    """Threads sending one row per request, each with a fresh id, until ``stop`` is set."""

    url: str
    rows: list[dict]
    count: int
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._send, args=(i,), daemon=True) for i in range(self.count)]
        for thread in threads:
            thread.start()
        return threads

    def _send(self, client: int) -> None:
        host, port = self.url.removeprefix("http://").split(":")
        connection, n = None, 0
        while not self.stop.is_set():
            row_id, row = f"c{client}-{n}", self.rows[(client * 97 + n) % len(self.rows)]
            n += 1
            body = json.dumps({"inputs": {**{k: [v] for k, v in row.items()}, "patient_id": [row_id]}})
            try:
                connection = connection or http.client.HTTPConnection(host, int(port), timeout=10)
                connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
            self.answers.append(Answer(time.monotonic(), ok, row_id))
            if not ok:
                if connection is not None:
                    connection.close()
                connection = None
                time.sleep(RETRY_S)

    def first_answer_after(self, moment: float) -> float:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            done = [a.done for a in list(self.answers) if a.ok and a.done > moment]
            if done:
                return min(done)
            time.sleep(0.05)
        raise TimeoutError(f"no answer within {DEADLINE_S} s after the restart")


def materialize_pipeline(env: dict) -> None:
    command = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-f", "definitions.py"]
    done = subprocess.run(
        [*command, "--select", f"group:{PIPELINE}"], cwd=REPO, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"the pipeline did not materialize:\n{done.stderr[-3000:]}")


def kill_endpoint_and_supervise(endpoints: Path, driver, tick_s: float) -> tuple[float, float, str]:
    """SIGKILL the endpoint, then tick its supervisor until it restarts it: the kill's time, the start of the
    tick that restarted it (answers after it come from the new process) and the URL it serves at."""
    from mlops_assets.serving.endpoint_state import read_state

    state = read_state(endpoints, PIPELINE)
    killed = time.monotonic()
    os.kill(state["pid"], signal.SIGKILL)
    deadline = killed + DEADLINE_S
    while time.monotonic() < deadline:
        ticked = time.monotonic()
        message = driver.tick(f"{PIPELINE}_endpoint_supervisor").skip_message or ""
        if message.startswith("restarted"):
            return killed, ticked, read_state(endpoints, PIPELINE)["url"]
        time.sleep(tick_s)
    raise TimeoutError("the supervisor did not restart the endpoint")


def training_process(home: Path) -> int | None:
    """The pid of this bench's training process (its environment names this ``MLOPS_HOME``)."""
    for proc in Path("/proc").iterdir():
        try:
            training = b"mlops_assets.model.training" in (proc / "cmdline").read_bytes()
            if training and f"MLOPS_HOME={home}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                return int(proc.name)
        except (OSError, ValueError):
            continue
    return None


def kill_training(env: dict, home: Path, client) -> dict:
    """Launch a training; SIGKILL its process once its MLflow run is open. What MLflow shows afterwards."""
    experiment = client.get_experiment_by_name(PIPELINE).experiment_id
    champion = client.get_model_version_by_alias(PIPELINE, "champion").version
    command = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-f", "definitions.py"]
    command += ["--select", f"{PIPELINE}/trained_model"]
    run = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, killed = time.monotonic() + DEADLINE_S, None
    while killed is None and run.poll() is None and time.monotonic() < deadline:
        pid = training_process(home)
        open_runs = client.search_runs([experiment], "attributes.status = 'RUNNING'") if pid else []
        if open_runs:
            os.kill(pid, signal.SIGKILL)
            killed = (time.monotonic(), open_runs[0].info.run_id)
        time.sleep(0.02)
    code = run.wait(DEADLINE_S)
    if killed is None:
        return {"caught": False, "exit": code}
    return {
        "caught": True,
        "exit": code,
        "run_status": client.get_run(killed[1]).info.status,
        "champion_before": champion,
        "champion_after": client.get_model_version_by_alias(PIPELINE, "champion").version,
        "versions": len(client.search_model_versions(f"name='{PIPELINE}'")),
    }


def wait_for_exit(pid: int) -> None:
    """Until process ``pid`` has exited (gone, or a zombie waiting for this process to reap it)."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX":
                return
        except OSError:
            return
        time.sleep(0.1)
    raise TimeoutError(f"process {pid} did not exit")


def logged_ids(data: Path) -> set[str]:
    import pyarrow.parquet as pq

    files = sorted((data / PIPELINE / "inference_log").glob("*.parquet"))
    return {i for f in files for i in pq.read_table(f, columns=["patient_id"]).column(0).to_pylist()}


def count(answers: list[Answer], start: float, end: float) -> tuple[int, int]:
    within = [a for a in answers if start < a.done <= end]
    return sum(a.ok for a in within), sum(not a.ok for a in within)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--load-seconds", type=float, default=5.0, help="traffic before each kill")
    parser.add_argument("--tick-seconds", type=float, default=1.0, help="between two supervisor ticks")
    args = parser.parse_args()
    print(machine_line(f"{dt.datetime.now():%Y-%m-%d %H:%M}", PACKAGES, os.getloadavg()[0]), flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        folder = Path(tmp)
        pipelines, home, dagster_home = folder / "pipelines", folder / "home", folder / "dagster_home"
        shutil.copytree(REPO / "pipelines" / "data" / PIPELINE, pipelines / "data" / PIPELINE)
        # each client row carries an id of its own (c<client>-<n>), to find it in the log: an id the spec's
        # str_matches refuses, so the rows are scored and flagged rather than rejected
        spec_text = (REPO / "pipelines" / f"{PIPELINE}.yaml").read_text()
        (pipelines / f"{PIPELINE}.yaml").write_text(spec_text + "\ndeployment: {on_invalid: flag}\n")
        dagster_home.mkdir()
        (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = {"MLOPS_HOME": str(home), "DAGSTER_HOME": str(dagster_home), "MLOPS_PIPELINES": str(pipelines)}
        os.environ.update(env)
        os.environ.pop("MLOPS_ADMIN_TOKEN", None)
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        env = dict(os.environ)
        materialize_pipeline(env)
        report(args, env, home)


def report(args: argparse.Namespace, env: dict, home: Path) -> None:
    import dagster as dg
    import pandas as pd
    from mlflow import MlflowClient

    from mlops_assets.definitions.folder import build_definitions
    from mlops_assets.governance.audit import read_decisions
    from mlops_assets.local.layout import LocalLayout
    from mlops_assets.local.tick import SensorDriver
    from mlops_assets.resources import local_resources
    from mlops_assets.sensors import build_sensors
    from mlops_assets.serving.endpoint_state import read_state, running_url, stop
    from mlops_assets.spec import load_spec

    layout = LocalLayout.from_env()
    spec = load_spec(Path(env["MLOPS_PIPELINES"]) / f"{PIPELINE}.yaml")
    frame = pd.read_csv(REPO / "pipelines" / "data" / PIPELINE / "features.csv")[spec.input_columns]
    rows = json.loads(frame.to_json(orient="records"))
    url = running_url(layout.endpoints, PIPELINE)
    clients = Clients(url, rows, args.clients)
    resources = local_resources(layout)
    client = MlflowClient(tracking_uri=layout.tracking_uri, registry_uri=layout.tracking_uri)
    with dg.DagsterInstance.get() as instance:
        driver = SensorDriver(build_definitions(None, resources, build_sensors), instance, resources.by_key())
        threads, started = clients.start(), time.monotonic()
        kills, urls = [], set()
        for _ in range(args.kills):
            time.sleep(args.load_seconds)
            killed, ticked, restarted_url = kill_endpoint_and_supervise(layout.endpoints, driver, args.tick_seconds)
            kills.append((killed, ticked, clients.first_answer_after(ticked)))
            urls.add(restarted_url)
        time.sleep(args.load_seconds)
        training_started = time.monotonic()
        training = kill_training(env, home, client)
        training_ended = time.monotonic()
        time.sleep(args.load_seconds)
        clients.stop.set()
        for thread in threads:
            thread.join(30)
        ended = time.monotonic()
    pid = read_state(layout.endpoints, PIPELINE)["pid"]
    stop(layout.endpoints, PIPELINE)
    wait_for_exit(pid)  # the clean stop flushes the log on its way out
    logged = logged_ids(layout.data)
    answers = clients.answers
    bounds = [started, *(ticked for _, ticked, _ in kills), ended]  # a killed process answers until it dies
    lost = [
        sum(a.ok and a.row_id not in logged for a in answers if s < a.done <= e) for s, e in itertools.pairwise(bounds)
    ]
    phases = {
        "endpoint": count(answers, started, training_started),
        "training": count(answers, training_started, training_ended),
    }
    restarts = sum(d["action"] == "restart" for d in read_decisions(resources.store, PIPELINE))
    print_table(args, phases, kills, lost, (urls, url, restarts), training, training_ended - training_started)


def print_table(args, phases, kills, lost, addresses, training, training_s) -> None:
    urls, url, restarts = addresses
    down = [answered - killed for killed, _, answered in kills]
    (answered, failed), (trained_ok, trained_failed) = phases["endpoint"], phases["training"]
    print(
        "\n| fault | times | answered | failed requests | rows lost (worst kill) | seconds to the next answer "
        "(median / max) | afterwards |\n|---|---|---|---|---|---|---|"
    )
    same = "same URL every time" if urls == {url} else f"URLs {sorted(urls)} (first {url})"
    print(
        f"| endpoint SIGKILL, supervisor ticked every {args.tick_seconds:g} s | {len(kills)} | {answered:,} "
        f"| {failed:,} (clients retry every {RETRY_S:g} s) | {sum(lost[:-1]):,} ({max(lost[:-1])}) "
        f"| {statistics.median(down):.2f} / {max(down):.2f} | {same}; {restarts} restart(s) in the audit log |"
    )
    if training["caught"]:
        moved = "unchanged" if training["champion_before"] == training["champion_after"] else "MOVED"
        after = (
            f"Dagster run exit {training['exit']}; MLflow run {training['run_status']}; champion "
            f"v{training['champion_after']} {moved}; {training['versions']} model version(s)"
        )
    else:
        after = f"the training finished before its run was seen open (exit {training['exit']}): not killed"
    print(
        f"| training SIGKILL inside its MLflow run | 1 | {trained_ok:,} | {trained_failed:,} | - "
        f"| - ({training_s:.1f} s from launch to the failed run) | {after} |"
    )
    print(f"| clean stop at the end | 1 | - | - | {lost[-1]:,} | - | log flushed on SIGTERM |")
    print(
        f"\n{args.clients} clients, one single-row request in flight each; {args.load_seconds:g} s of traffic "
        "before each kill; rows lost: answered, absent from the inference log after the clean stop."
    )


if __name__ == "__main__":
    main()
