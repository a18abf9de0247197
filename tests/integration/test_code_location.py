"""The code location as Dagster loads it, and the CLI a user runs against it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow import MlflowClient

from mlops_assets.definitions.folder import SPEC_ERROR_ASSET, SPEC_ERROR_GROUP
from mlops_assets.naming import PORTFOLIO
from mlops_assets.serving.endpoint_state import stop
from mlops_assets.spec import load_specs
from tests.conftest import failures, metadata

REPO = Path(__file__).resolve().parents[2]
SIX = {
    "raw_data": set(),
    "validated_features": {"raw_data"},
    "trained_model": {"validated_features"},
    "evaluation_report": {"trained_model"},
    "deployed_endpoint": {"evaluation_report"},
    "drift_report": {"validated_features", "deployed_endpoint"},
}
# with a labels source, what production taught joins training: inference log + labels -> feedback
FEEDBACK = {
    "inference_log": set(),
    "labels": set(),
    "feedback": {"inference_log", "labels"},
    "validated_features": {"raw_data", "feedback"},
}

PROBE = """
import json, sys
import definitions
graph = definitions.defs.resolve_asset_graph()
nodes = {}
for key in graph.get_all_asset_keys():
    node = graph.get(key)
    nodes["/".join(key.path)] = {
        "deps": sorted("/".join(p.path) for p in node.parent_keys),
        "group": node.group_name,
        "description": node.description,
    }
checks = sorted(f"{'/'.join(k.asset_key.path)}:{k.name}" for k in graph.asset_check_keys)
heavy = [m for m in ("torch", "mlflow", "sklearn", "pandas", "pyarrow") if m in sys.modules]
print(json.dumps({"nodes": nodes, "checks": checks, "heavy": heavy}))
"""


def load_location(env: dict[str, str]) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_every_spec_becomes_six_assets_with_their_lineage(tmp_path):
    """Six per spec, the feedback asset and its two external sources for specs with labels, and
    ``batch_predictions`` for the specs that declare a dataset to score."""
    env = {**os.environ, "MLOPS_HOME": str(tmp_path / "home")}
    location = load_location(env)
    specs = {spec.name: spec for spec, _ in load_specs(REPO / "pipelines")}
    assert {key.split("/")[0] for key in location["nodes"]} == set(specs) | {PORTFOLIO}
    for pipeline, spec in specs.items():
        expected = {**SIX, **(FEEDBACK if spec.source.labels else {})}
        expected.update({"batch_predictions": {"deployed_endpoint"}} if spec.batch else {})
        assert {k for k in location["nodes"] if k.startswith(f"{pipeline}/")} == {f"{pipeline}/{a}" for a in expected}
        for asset, parents in expected.items():
            node = location["nodes"][f"{pipeline}/{asset}"]
            assert node["deps"] == sorted(f"{pipeline}/{p}" for p in parents), (pipeline, asset)
            assert node["group"] == pipeline
        assert f"{pipeline}/evaluation_report:gate" in location["checks"]
        assert f"{pipeline}/drift_report:no_drift" in location["checks"]
        if spec.source.labels:
            assert f"{pipeline}/feedback:labels_accounted_for" in location["checks"]
    assert location["heavy"] == [], "the code location must not import torch, mlflow, sklearn, pandas or pyarrow"


def test_pipelines_folder_comes_from_the_environment(tmp_path, pipelines):
    (pipelines / "diabetes.yaml").rename(pipelines / "my_own.yaml.off")
    (pipelines / "wine.yaml").unlink()
    env = {**os.environ, "MLOPS_HOME": str(tmp_path / "home"), "MLOPS_PIPELINES": str(pipelines)}
    assert {k.split("/")[0] for k in load_location(env)["nodes"]} == {"breast_cancer", PORTFOLIO}


def test_a_bad_spec_is_shown_on_the_code_location_with_its_file_and_field_and_the_others_load(tmp_path, pipelines):
    text = (pipelines / "wine.yaml").read_text().replace("task: multiclass", "task: multi")
    (pipelines / "wine.yaml").write_text(text)
    env = {**os.environ, "MLOPS_HOME": str(tmp_path / "home"), "MLOPS_PIPELINES": str(pipelines)}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    location = json.loads(done.stdout.splitlines()[-1])
    assert {k.split("/")[0] for k in location["nodes"]} == {"breast_cancer", "diabetes", "wine", PORTFOLIO}
    assert not [k for k in location["nodes"] if k.startswith("wine/") and k != f"wine/{SPEC_ERROR_ASSET}"]
    placeholder = location["nodes"][f"wine/{SPEC_ERROR_ASSET}"]
    assert placeholder["group"] == SPEC_ERROR_GROUP
    problem = "task: Input should be 'binary', 'multiclass' or 'regression'"
    assert str(pipelines / "wine.yaml") in placeholder["description"] and problem in placeholder["description"]
    assert f"invalid pipeline spec {pipelines / 'wine.yaml'}" in done.stderr and problem in done.stderr
    assert {"breast_cancer/drift_report:no_drift", "diabetes/drift_report:no_drift"} <= set(location["checks"])


def test_dagster_cli_materializes_a_whole_pipeline(tmp_path):
    home, dagster_home = tmp_path / "home", tmp_path / "dagster_home"
    dagster_home.mkdir()
    env = {**os.environ, "MLOPS_HOME": str(home), "DAGSTER_HOME": str(dagster_home)}
    try:
        done = subprocess.run(
            [
                str(Path(sys.executable).parent / "dagster"),
                "asset",
                "materialize",
                "-f",
                "definitions.py",
                "--select",
                "group:diabetes",
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        stop(home / "endpoints", "diabetes")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "RUN_SUCCESS" in done.stderr
    uri = f"sqlite:///{home / 'mlflow.db'}"
    champion = MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version_by_alias("diabetes", "champion")
    assert champion.tags["gate"] == "passed" and champion.tags["approved_by"].startswith("gate:auto")
    assert list((home / "data" / "diabetes" / "reports" / "drift").glob("*.json"))


def test_the_docs_minimal_spec_on_new_data_gets_six_assets_that_run(tmp_path, project):
    """A user's own CSV and the smallest spec of docs/spec-reference.md, without any Python."""
    guide = (REPO / "docs" / "spec-reference.md").read_text()
    spec = guide.split("The smallest useful spec:\n\n```yaml\n", 1)[1].split("```", 1)[0]
    for path in project.pipelines.glob("*.yaml"):
        path.unlink()
    (project.pipelines / "churn.yaml").write_text(spec)
    (project.pipelines / "data").mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    tenure = rng.uniform(0, 60, 400)
    plan = rng.choice(["basic", "pro"], 400)
    churned = (rng.uniform(size=400) < 1 / (1 + np.exp(0.08 * tenure - 2 + (plan == "pro")))).astype(int)
    pd.DataFrame({"tenure_months": tenure, "plan": plan, "churned": churned}).to_csv(
        project.pipelines / "data" / "churn.csv", index=False
    )
    result = project.materialize("churn")
    assert result.success, failures(result)
    assert len(result.asset_materializations_for_node("churn__drift_report")) == 1
    assert metadata(result, "churn", "evaluation_report")["holdout_roc_auc"] > 0.6
