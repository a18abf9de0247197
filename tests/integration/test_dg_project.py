"""The example dg project (examples/dg_project) as a user drives it: ``dg check defs``, ``dg list defs`` and
``dg launch``, with the venv's ``dg``, on a private MLOPS_HOME and DAGSTER_HOME."""

import json
import os
import shutil
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest
import yaml

from mlops_assets.naming import COMPONENT_TYPE, PORTFOLIO

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "dg_project"
DEFS_YAML = Path("ml_pipelines", "defs", "diabetes", "defs.yaml")
DG = Path(sys.executable).parent / "dg"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "MLOPS_HOME": str(tmp_path / "home"), "DAGSTER_HOME": str(dagster_home)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # the example folder stays as it is in git
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def dg(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(DG), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def files_in(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*")}


def test_dg_check_and_list_defs_see_the_pipeline_its_checks_and_sensors(env):
    before = files_in(EXAMPLE)
    checked = dg("check", "defs", cwd=EXAMPLE, env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "All definitions loaded successfully." in checked.stdout + checked.stderr

    listed = dg("list", "defs", "--json", cwd=EXAMPLE, env=env)
    assert listed.returncode == 0, listed.stderr
    defs = json.loads(listed.stdout)
    assets = {a["asset_key"]: a for a in defs["assets"]}
    portfolio = assets.pop(PORTFOLIO)  # the PortfolioComponent's report over every pipeline component
    assert portfolio["group_name"] == PORTFOLIO and "diabetes" in portfolio["description"]
    names = ["raw_data", "validated_features", "trained_model", "evaluation_report", "deployed_endpoint"]
    assert set(assets) == {f"diabetes/{n}" for n in [*names, "drift_report"]}
    for parent, child in pairwise(names):
        assert assets[f"diabetes/{child}"]["dependency_keys"] == [f"diabetes/{parent}"]
    assert {a["group_name"] for a in assets.values()} == {"diabetes"}
    assert assets["diabetes/raw_data"]["source"].startswith(str(DEFS_YAML))
    assert {"diabetes/evaluation_report:gate", "diabetes/drift_report:no_drift"} <= {
        c["key"] for c in defs["asset_checks"]
    }
    sensors = {"diabetes_drift_sensor", "diabetes_endpoint_supervisor", "diabetes_endpoint_checks"}
    assert {s["name"] for s in defs["sensors"]} == {*sensors, f"{PORTFOLIO}_sensor"}
    assert {s["name"] for s in defs["schedules"]} == {f"{PORTFOLIO}_schedule"}
    assert {"store", "registry", "trainer", "deployer", "io_manager"} <= {r["name"] for r in defs["resources"]}
    assert files_in(EXAMPLE) == before


def test_dg_launch_trains_the_component_pipeline_from_its_defs_yaml(env):
    """The trainer is another process: it reads the spec again from the defs.yaml, as the endpoint does."""
    before = files_in(EXAMPLE)
    selection = "diabetes/raw_data,diabetes/validated_features,diabetes/trained_model"
    launched = dg("launch", "--assets", selection, cwd=EXAMPLE, env=env)
    assert launched.returncode == 0, launched.stdout + launched.stderr
    assert "RUN_SUCCESS" in launched.stderr
    snapshots = list((Path(env["MLOPS_HOME"]) / "data" / "diabetes" / "raw").glob("*.parquet"))
    assert len(snapshots) == 1
    assert "registered diabetes version 1 as challenger" in launched.stderr + launched.stdout
    assert files_in(EXAMPLE) == before


@pytest.mark.parametrize(
    ("field", "edit"),
    [
        ("target", lambda raw: raw.update(target="outcome")),  # the spec's cross-field check
        ("source.path", lambda raw: raw["source"].update(path="data/nope.csv")),  # resolved against the folder
        ("monitoring.window", lambda raw: raw["monitoring"].update(window="many")),  # the spec's JSON schema
    ],
)
def test_dg_check_defs_names_the_field_of_a_bad_attribute(tmp_path, env, field, edit):
    project = tmp_path / "dg_project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__"))
    document = yaml.safe_load((project / DEFS_YAML).read_text())
    edit(document["attributes"])
    (project / DEFS_YAML).write_text(yaml.safe_dump(document, sort_keys=False))
    checked = dg("check", "defs", cwd=project, env=env)
    said = checked.stdout + checked.stderr
    assert checked.returncode == 1, said
    assert f"attributes.{field}" in said and f"{project / DEFS_YAML}:" in said, said


def test_dg_scaffold_drafts_a_pipeline_that_dg_check_defs_accepts_as_written(tmp_path, env):
    """`dg scaffold defs mlops_assets.MLPipelineComponent churn` once wrote `attributes: {}`, which `dg check defs`
    refused; now it drafts the spec from the data (tests/unit/definitions/test_scaffolder.py: no data, no scaffold)."""
    project = tmp_path / "dg_project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__"))
    wine = REPO / "pipelines" / "data" / "wine" / "wine.csv"
    scaffold = ("scaffold", "defs", COMPONENT_TYPE, "churn")
    scaffolded = dg(*scaffold, "--source", str(wine), "--target", "cultivar", cwd=project, env=env)
    assert scaffolded.returncode == 0, scaffolded.stdout + scaffolded.stderr
    assert "Drafted multiclass on cultivar (3 distinct strings)" in scaffolded.stdout
    folder = project / "ml_pipelines" / "defs" / "churn"
    assert (folder / "data" / "wine.csv").read_bytes() == wine.read_bytes()  # a component holds its own data
    assert yaml.safe_load((folder / "defs.yaml").read_text())["attributes"]["source"] == {"path": "data/wine.csv"}

    checked = dg("check", "defs", cwd=project, env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "All definitions loaded successfully." in checked.stdout + checked.stderr
