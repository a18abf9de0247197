"""Shared fixtures: a private MLOPS_HOME and pipelines folder per test, real materializations, and an
S3-compatible object store on loopback."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from mlops_assets.definitions.folder import build_definitions
from mlops_assets.local.layout import LocalLayout
from mlops_assets.resources import local_resources
from mlops_assets.serving.endpoint_state import stop

REPO = Path(__file__).resolve().parents[1]
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
_buckets = itertools.count()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3-compatible HTTP server on 127.0.0.1, in a thread, for the session: what s3fs, boto3 and
    MLflow reach through ``AWS_ENDPOINT_URL``. Yields the endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    settings = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    yield settings["AWS_ENDPOINT_URL"]
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: str) -> str:
    """A new, empty bucket: ``s3://<name>``."""
    import boto3

    name = f"test-{next(_buckets)}"
    boto3.client("s3").create_bucket(Bucket=name)
    return f"s3://{name}"


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """An empty MLflow database as MLflow's own migrations leave it, made once a session: creating one costs
    seconds of schema migrations, which every test's private store would otherwise pay again."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    folder = tmp_path_factory.mktemp("mlflow_template")
    SqlAlchemyStore(f"sqlite:///{folder / 'mlflow.db'}", str(folder / "artifacts"))
    return (folder / "mlflow.db").read_bytes()


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_mlflow_db: bytes):
    """An empty embedded default, its MLflow database migrated; endpoints started under it are stopped
    afterwards."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    layout = LocalLayout.from_env().ensure()
    layout.mlflow_db.write_bytes(empty_mlflow_db)  # the file ensure() made private keeps its mode
    yield layout
    for state in layout.endpoints.glob("*.json"):
        stop(layout.endpoints, state.stem)


@pytest.fixture
def pipelines(tmp_path: Path) -> Path:
    """A copy of the bundled pipelines and their data, free to edit."""
    target = tmp_path / "pipelines"
    shutil.copytree(REPO / "pipelines", target)
    return target


class Project:
    """The code location a user would load, over a test's own folders, with a persistent instance."""

    def __init__(self, pipelines: Path, layout: LocalLayout, instance: dg.DagsterInstance):
        self.pipelines, self.layout, self.instance = pipelines, layout, instance

    def materialize(self, pipeline: str, *names: str, tags: dict[str, str] | None = None, run_config=None):
        """Materialize ``names`` (all six when empty) of ``pipeline``; a failed run is returned, not raised."""
        defs = build_definitions(self.pipelines, local_resources(self.layout))
        assets = [a for a in defs.assets if a.key.path[0] == pipeline]
        selection = [dg.AssetKey([pipeline, n]) for n in names] or None
        return dg.materialize(
            assets,
            selection=selection,
            resources=local_resources(self.layout).by_key(),
            instance=self.instance,
            tags=tags,
            raise_on_error=False,
            run_config={**QUIET, **(run_config or {})},
        )


@pytest.fixture
def project(pipelines: Path, layout: LocalLayout, tmp_path: Path):
    (tmp_path / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as instance:
        yield Project(pipelines, layout, instance)


def metadata(result, pipeline: str, name: str) -> dict:
    """Metadata values of the last materialization of ``pipeline/name`` in a run result."""
    events = result.asset_materializations_for_node(f"{pipeline}__{name}")
    assert events, f"{pipeline}/{name} was not materialized"
    return {k: getattr(v, "value", v) for k, v in events[-1].metadata.items()}


def check(result, pipeline: str, asset: str, name: str):
    """The evaluation of one asset check in a run result."""
    evaluations = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.asset_key == dg.AssetKey([pipeline, asset])
        and e.event_specific_data.check_name == name
    ]
    assert evaluations, f"check {name} on {pipeline}/{asset} did not run"
    return evaluations[-1]


def failures(result) -> str:
    return "\n".join(e.event_specific_data.error.to_string() for e in result.all_events if e.is_step_failure)
