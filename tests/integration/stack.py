"""The production stack on loopback, as separate processes: PostgreSQL (Dagster's instance and MLflow's backend
store), moto's S3-compatible server (the object store), an ``mlflow server`` that proxies artifacts to it, and
Dagster as on a cluster: a gRPC code server, the webserver and the daemon.

Each service gets a free port and a log file in the stack's folder; a service that cannot start skips the tests
that need it with a message naming it (``.ci/run`` installs PostgreSQL where it is missing). A test module
takes the fixtures by assigning them to its own names and provides ``stack_pipelines`` (a folder of specs).

Teardown stops each service's process group. Should pytest die first, each service gets its stop signal from
the kernel; the code server then waits for the runs in flight, and endpoints a run started stay up until
``mlops-assets stop`` (with the stack's MLOPS_HOME).
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEPLOY = REPO / "deploy" / "dagster"
BUCKET = "mlops-test"
LOCATION = "mlops-assets"  # deploy/dagster/workspace.yaml's location_name
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
# the stack's services may not reach anything but each other: no proxy between them
NO_PROXY = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


class ServiceUnavailable(Exception):
    """A third-party service of the stack could not start here; the message says which and why (a skip)."""


class ServiceFailed(AssertionError):
    """A process running this project's code or configuration did not start (a failure, never a skip)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


@dataclass
class Process:
    """A service's process group and its log file."""

    name: str
    popen: subprocess.Popen
    log: Path
    stop_signal: int = signal.SIGTERM

    def stop(self, grace_s: float = 20) -> None:
        if self.popen.poll() is not None:
            return
        os.killpg(self.popen.pid, self.stop_signal)
        try:
            self.popen.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)


def _die_with_parent(stop_signal: int) -> Callable[[], None] | None:
    """A pytest killed before its teardown would leave the services running: on Linux each one is sent its
    stop signal when pytest dies (prctl's PR_SET_PDEATHSIG, set in the child after any change of user)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl  # loaded here: the child between fork and exec only calls it
    return lambda: prctl(1, stop_signal, 0, 0, 0)  # 1: PR_SET_PDEATHSIG


def start(
    name: str,
    command: list[str],
    folder: Path,
    env: dict[str, str],
    cwd: Path = REPO,
    stop_signal: int = signal.SIGTERM,
    run_as: dict | None = None,
) -> Process:
    """``command`` in its own process group, stdout and stderr in ``folder/<name>.log``."""
    if shutil.which(command[0]) is None:
        raise ServiceUnavailable(f"{name} could not start: {command[0]} not found")
    log = folder / f"{name}.log"
    with open(log, "wb") as out:
        popen = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent(stop_signal),
            **(run_as or {}),
        )
    return Process(name, popen, log, stop_signal)


def wait_until(
    process: Process,
    ready: Callable[[], object],
    timeout_s: float,
    what: str,
    error: type[Exception] = ServiceUnavailable,
):
    """Poll ``ready`` until it returns something true; when the service dies or the deadline passes, it is
    stopped and its log is in the error."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise error(
                f"{process.name} could not start: it exited with {process.popen.returncode} before {what}; "
                f"its log ({process.log}):\n{tail(process.log)}"
            )
        value = ready()
        if value:
            return value
        time.sleep(0.5)
    process.stop()
    raise error(
        f"{process.name} could not start: no {what} after {timeout_s:.0f} s; its log ({process.log}):\n"
        f"{tail(process.log)}"
    )


def http_json(url: str, body: dict | None = None, timeout: float = 10):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def skip_unless_started(service: Callable[[], object]):
    try:
        return service()
    except ServiceUnavailable as exc:
        pytest.skip(str(exc))


# -- PostgreSQL -------------------------------------------------------------------------------------------------


@dataclass
class Postgres:
    process: Process
    port: int
    user: str = "postgres"

    def url(self, database: str) -> str:
        """A bare ``postgresql://`` URL, as the Dagster chart builds it and most MLflow backend URIs are written
        (the production extra keeps SQLAlchemy at 2.0, which reads it as psycopg2; libpq takes it too)."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str):
        import psycopg2

        return psycopg2.connect(self.url(database), connect_timeout=5)


def postgres_bin() -> Path:
    """The folder of Debian's PostgreSQL binaries (initdb is not on PATH there), else wherever PATH has them."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise ServiceUnavailable("PostgreSQL could not start: initdb not found (apt-get install postgresql)")
    return Path(initdb).parent


def start_postgres(folder: Path, data: Path, databases: list[str]) -> Postgres:
    """A throwaway cluster in ``data`` (a new folder whose parent it may write), on a free loopback port,
    trusting local connections, with ``databases`` created; its log in ``folder``. As root it runs as the
    ``postgres`` user, which owns ``data``'s parent: initdb and postgres refuse to run as root."""
    bin = postgres_bin()
    run_as: dict = {}
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            raise ServiceUnavailable("PostgreSQL could not start: running as root and no 'postgres' user") from None
        run_as = {"user": user.pw_uid, "group": user.pw_gid}
        os.chown(data.parent, user.pw_uid, user.pw_gid)
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    init = subprocess.run(
        [str(bin / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
        capture_output=True,
        text=True,
        env=env,
        cwd=data.parent,
        **run_as,
    )
    if init.returncode != 0:
        raise ServiceUnavailable(f"PostgreSQL could not start: initdb failed:\n{init.stdout}{init.stderr}")
    port = free_port()
    options = ["-c", "listen_addresses=127.0.0.1", "-p", str(port), "-k", str(data.parent)]
    options += ["-c", "fsync=off", "-c", "full_page_writes=off"]  # a throwaway cluster need not survive a crash
    # SIGINT is PostgreSQL's fast shutdown (pg_ctl stop -m fast)
    process = start("postgres", [str(bin / "postgres"), "-D", str(data), *options], folder, env,
                    cwd=data.parent, stop_signal=signal.SIGINT, run_as=run_as)  # fmt: skip
    postgres = Postgres(process, port)

    def accepts_connections() -> bool:
        try:
            postgres.connect("postgres").close()
            return True
        except Exception:
            return False

    wait_until(process, accepts_connections, 60, "a connection accepted")
    connection = postgres.connect("postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        for name in databases:
            cursor.execute(f"CREATE DATABASE {name}")
    connection.close()
    return postgres


# -- the object store and MLflow ----------------------------------------------------------------------------------


@dataclass
class ObjectStore:
    process: Process
    endpoint: str
    bucket: str = BUCKET

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=AWS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS["AWS_SECRET_ACCESS_KEY"],
            region_name=AWS["AWS_DEFAULT_REGION"],
        )

    def read(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


def start_object_store(folder: Path) -> ObjectStore:
    """moto's standalone S3 server with the stack's bucket."""
    port = free_port()
    process = start("moto", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], folder, dict(os.environ))
    store = ObjectStore(process, f"http://127.0.0.1:{port}")
    wait_until(process, lambda: answers(f"{store.endpoint}/moto-api/"), 60, "answer on its port")
    store.client().create_bucket(Bucket=BUCKET)
    return store


@dataclass
class TrackingServer:
    process: Process
    uri: str


def start_tracking_server(folder: Path, backend_uri: str, store: ObjectStore) -> TrackingServer:
    """``mlflow server`` on PostgreSQL, serving artifacts from the bucket, so clients need no S3 access."""
    port = free_port()
    env = {**os.environ, **AWS, **NO_PROXY, "MLFLOW_S3_ENDPOINT_URL": store.endpoint}
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    command += ["--backend-store-uri", backend_uri, "--serve-artifacts"]
    command += ["--artifacts-destination", f"s3://{BUCKET}/mlflow"]
    process = start("mlflow", command, folder, env, cwd=folder)
    server = TrackingServer(process, f"http://127.0.0.1:{port}")
    wait_until(process, lambda: answers(f"{server.uri}/health"), 120, "/health")
    return server


# -- Dagster ------------------------------------------------------------------------------------------------------

DAEMONS = {"SENSOR", "QUEUED_RUN_COORDINATOR"}  # those the loop needs healthy
REPOSITORY = "__repository__"  # what Dagster names the repository of a Definitions object
ASSET_JOB = "__ASSET_JOB"  # the implicit job that materializes any selection of assets
DONE = {"SUCCESS", "FAILURE", "CANCELED"}

LOCATION_LOADED = """{ workspaceOrError { ... on Workspace { locationEntries { name locationOrLoadError {
  __typename ... on PythonError { message } } } } } }"""
DAEMON_HEALTH = "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }"
ASSET_NODES = "{ assetNodes { assetKey { path } isMaterializable } }"
LAUNCH = """mutation ($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on Error { message } } }"""
RUN = """query ($id: ID!) { runOrError(runId: $id) { ... on Run { runId status tags { key value } } } }"""
RUNS = """query ($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) {
  ... on Runs { results { runId status tags { key value } } } } }"""
FAILURES = """query ($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events { __typename
  ... on ExecutionStepFailureEvent { stepKey error { message stack } }
  ... on RunFailureEvent { message } } } } }"""
START_SENSOR = """mutation ($selector: SensorSelector!) { startSensor(sensorSelector: $selector) {
  __typename ... on Sensor { sensorState { status } } ... on Error { message } } }"""


@dataclass
class Dagster:
    """The webserver's GraphQL API, and the processes behind it."""

    home: Path
    webserver: str
    env: dict[str, str]
    processes: list[Process]

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 30) -> dict:
        body = http_json(f"{self.webserver}/graphql", {"query": query, "variables": variables or {}}, timeout)
        assert "errors" not in body, body["errors"]
        return body["data"]

    def materializable(self, group: str) -> list[list[str]]:
        nodes = self.graphql(ASSET_NODES)["assetNodes"]
        return [n["assetKey"]["path"] for n in nodes if n["assetKey"]["path"][0] == group and n["isMaterializable"]]

    def launch(self, asset_keys: list[list[str]], tags: dict[str, str] | None = None) -> str:
        """Queue a run of the asset job over ``asset_keys``, as the UI's Materialize does; its id."""
        selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": ASSET_JOB}
        params = {
            "selector": {**selector, "assetSelection": [{"path": key} for key in asset_keys]},
            "runConfigData": {},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]},
        }
        launched = self.graphql(LAUNCH, {"params": params})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        return launched["run"]["runId"]

    def run(self, run_id: str) -> dict:
        return self.graphql(RUN, {"id": run_id})["runOrError"]

    def runs(self, tags: dict[str, str]) -> list[dict]:
        tags = [{"key": k, "value": v} for k, v in tags.items()]
        return self.graphql(RUNS, {"tags": tags})["runsOrError"]["results"]

    def failures(self, run_id: str) -> str:
        events = self.graphql(FAILURES, {"id": run_id})["logsForRun"]["events"]
        errors = [e.get("error") or {"message": e.get("message")} for e in events if "Failure" in e["__typename"]]
        return "\n".join(f"{e['message']}{(e.get('stack') and ''.join(e['stack'][-5:])) or ''}" for e in errors)

    def wait_for_run(self, run_id: str, timeout_s: float) -> dict:
        """The run once it has ended (queued, dequeued by the daemon, launched by the code server)."""
        run = self.wait(lambda: (r := self.run(run_id))["status"] in DONE and r, timeout_s, f"run {run_id} to end")
        assert run["status"] == "SUCCESS", f"run {run_id} ended {run['status']}:\n{self.failures(run_id)}"
        return run

    def wait(self, condition: Callable[[], object], timeout_s: float, what: str):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for process in self.processes:
                assert process.popen.poll() is None, f"{process.name} exited while waiting for {what}:\n{self.logs()}"
            value = condition()
            if value:
                return value
            time.sleep(1)
        raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}:\n{self.logs()}")

    def start_sensor(self, name: str) -> None:
        selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "sensorName": name}
        started = self.graphql(START_SENSOR, {"selector": selector})["startSensor"]
        assert started["__typename"] == "Sensor" and started["sensorState"]["status"] == "RUNNING", started

    def logs(self) -> str:
        return "\n".join(f"== {p.name} ({p.log})\n{tail(p.log)}" for p in self.processes)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def start_dagster(folder: Path, env: dict[str, str]) -> Dagster:
    """DAGSTER_HOME with deploy/dagster/dagster.yaml, then the code server, the webserver and the daemon, each
    its own process; ready when the webserver has loaded the location over gRPC and the daemon reports healthy.

    A missing command skips; anything else that keeps Dagster from starting runs our code or our
    configuration, so it fails (``ServiceFailed``)."""
    home = folder / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    grpc_port, web_port = free_port(), free_port()
    env = {**env, "DAGSTER_HOME": str(home), "DAGSTER_GRPC_HOST": "127.0.0.1", "DAGSTER_GRPC_PORT": str(grpc_port)}
    dagster = Dagster(home, f"http://127.0.0.1:{web_port}", env, [])
    try:
        code = start("code-server", [str(BIN / "dagster"), "api", "grpc", "-f", "definitions.py", "-h", "127.0.0.1",
                                     "-p", str(grpc_port)], folder, env)  # fmt: skip
        dagster.processes.append(code)
        started = f"on port {grpc_port}"
        wait_until(
            code, lambda: started in tail(code.log, 100_000), 120, "'Started Dagster code server'", ServiceFailed
        )
        workspace = ["-w", str(DEPLOY / "workspace.yaml")]
        web = start("webserver", [str(BIN / "dagster-webserver"), *workspace, "-h", "127.0.0.1", "-p", str(web_port)],
                    folder, env)  # fmt: skip
        daemon = start("daemon", [str(BIN / "dagster-daemon"), "run", *workspace], folder, env)
        dagster.processes += [web, daemon]

        def location_loaded():
            try:
                entries = dagster.graphql(LOCATION_LOADED)["workspaceOrError"]["locationEntries"]
            except (OSError, KeyError, TypeError, ValueError):
                return None
            location = {e["name"]: e["locationOrLoadError"] for e in entries}.get(LOCATION) or {}
            if location.get("__typename") == "PythonError":
                raise ServiceFailed(f"the code location failed to load over gRPC: {location['message']}")
            return location.get("__typename") == "RepositoryLocation"

        wait_until(web, location_loaded, 120, f"code location {LOCATION} loaded over gRPC", ServiceFailed)

        def daemons_healthy():
            statuses = dagster.graphql(DAEMON_HEALTH)["instance"]["daemonHealth"]["allDaemonStatuses"]
            return {s["daemonType"] for s in statuses if s["healthy"]} >= DAEMONS

        wait_until(daemon, daemons_healthy, 120, f"healthy {sorted(DAEMONS)} daemons", ServiceFailed)
    except BaseException:
        dagster.stop()
        raise
    return dagster


# -- fixtures -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def stack_folder(request: pytest.FixtureRequest) -> Iterator[Path]:
    """Logs and state of the stack's services; kept when a test failed (failures name the logs in it)."""
    folder = Path(tempfile.mkdtemp(prefix="mlops-stack-"))
    yield folder
    if not request.session.testsfailed:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(stack_folder: Path) -> Iterator[Postgres]:
    """Dagster's and MLflow's databases. Its data folder is apart from the stack's: not under a root-only
    folder, since the ``postgres`` user must reach it."""
    data = Path(tempfile.mkdtemp(prefix="mlops-postgres-")) / "data"
    try:
        server = skip_unless_started(lambda: start_postgres(stack_folder, data, ["dagster", "mlflow"]))
        yield server
        server.process.stop()
    finally:
        shutil.rmtree(data.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def object_store(stack_folder: Path) -> Iterator[ObjectStore]:
    store = skip_unless_started(lambda: start_object_store(stack_folder))
    yield store
    store.process.stop()


@pytest.fixture(scope="session")
def tracking_server(stack_folder: Path, postgres: Postgres, object_store: ObjectStore) -> Iterator[TrackingServer]:
    server = skip_unless_started(lambda: start_tracking_server(stack_folder, postgres.url("mlflow"), object_store))
    yield server
    server.process.stop()


def production_env(
    folder: Path, pipelines: Path, postgres: Postgres, store: ObjectStore, tracking: TrackingServer
) -> dict[str, str]:
    """What the code location, its runs and the CLI read to select the production resources. No
    MLFLOW_S3_ENDPOINT_URL: clients reach MLflow's artifacts through the tracking server only."""
    env = {**os.environ, **AWS, **NO_PROXY}
    return env | {
        "MLOPS_ENV": "production",
        "MLOPS_PIPELINES": str(pipelines),
        "MLOPS_HOME": str(folder / "mlops_home"),
        "MLOPS_STORE_URL": f"s3://{BUCKET}/data",
        "MLOPS_TRAINER": "subprocess",  # no Kubernetes here: training and endpoints are local processes
        "MLOPS_DEPLOYER": "local",
        "AWS_ENDPOINT_URL": store.endpoint,
        "MLFLOW_TRACKING_URI": tracking.uri,
        "DAGSTER_POSTGRES_URL": postgres.url("dagster"),
    }


@dataclass
class Stack:
    postgres: Postgres
    object_store: ObjectStore
    tracking: TrackingServer
    dagster: Dagster
    pipelines: Path

    @property
    def env(self) -> dict[str, str]:
        return self.dagster.env

    @property
    def home(self) -> Path:
        return Path(self.env["MLOPS_HOME"])

    def cli(self, *args: str, timeout: float = 120) -> str:
        """``mlops-assets`` with the production environment, as an operator's shell has it."""
        done = subprocess.run(
            [str(BIN / "mlops-assets"), *args], cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, f"mlops-assets {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done.stdout


@pytest.fixture(scope="module")
def stack(
    stack_folder: Path,
    stack_pipelines: Path,
    postgres: Postgres,
    object_store: ObjectStore,
    tracking_server: TrackingServer,
) -> Iterator[Stack]:
    """The whole stack over ``stack_pipelines`` (a folder of specs the test module provides); the endpoints its
    runs started are stopped afterwards."""
    env = production_env(stack_folder, stack_pipelines, postgres, object_store, tracking_server)
    dagster = start_dagster(stack_folder, env)
    stack = Stack(postgres, object_store, tracking_server, dagster, stack_pipelines)
    try:
        yield stack
    finally:
        dagster.stop()
        subprocess.run([str(BIN / "mlops-assets"), "stop"], cwd=REPO, env=env, capture_output=True, timeout=60)
