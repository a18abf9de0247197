"""A model version records the commit of the code that trained it, apart from it where its spec lives, and
the rest of its provenance, which ``mlops-assets lineage`` prints as a tree."""

import json
import subprocess
from importlib import metadata
from pathlib import Path

import pytest

from mlops_assets.cli.commands import main
from mlops_assets.governance.lineage import lineage
from mlops_assets.model.provenance import code_version
from mlops_assets.model.registry import MlflowRegistryClient
from mlops_assets.naming import APPROVER_TAG, PROVENANCE_FOLDER, REQUIREMENTS_ARTIFACT, SPEC_ARTIFACT, TRIGGER_TAG
from mlops_assets.resources.artifact_store import FsspecArtifactStore
from tests.conftest import failures
from tests.conftest import metadata as metadata_of

REPO = Path(__file__).resolve().parents[2]
DEPLOYED = ("raw_data", "feedback", "validated_features", "trained_model", "evaluation_report", "deployed_endpoint")


def git(directory: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args]
    return subprocess.run(command, cwd=directory, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def code_commit() -> str:
    """This checkout's commit, as git itself reports it; the test needs a checkout, not an installed wheel."""
    try:
        sha = git(REPO, "rev-parse", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("the package is not in a git checkout")
    return f"{sha}-dirty" if git(REPO, "status", "--porcelain", "--untracked-files=no") else sha


@pytest.fixture
def outside_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder no repository contains, wherever the temporary folder lives."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    folder = tmp_path / "specs"
    folder.mkdir()
    return folder


def test_a_spec_outside_git_still_records_the_code_commit(outside_git, code_commit):
    spec = outside_git / "churn.yaml"
    spec.write_text("name: churn\n")
    version = code_version(spec)
    assert version["git_sha"] == code_commit
    assert version["spec_location"] == str(spec.resolve())
    assert version["spec_git_sha"] == "none"


def test_a_spec_in_its_own_repository_records_that_commit_apart_from_the_code(outside_git, code_commit):
    spec = outside_git / "churn.yaml"
    spec.write_text("name: churn\n")
    git(outside_git, "init", "-q")
    git(outside_git, "add", "churn.yaml")
    git(outside_git, "commit", "-q", "-m", "spec")
    spec_commit = git(outside_git, "rev-parse", "HEAD")
    version = code_version(spec)
    assert (version["git_sha"], version["spec_git_sha"]) == (code_commit, spec_commit)
    spec.write_text("name: churn_v2\n")
    assert code_version(outside_git)["spec_git_sha"] == f"{spec_commit}-dirty"


def test_a_deployed_version_carries_its_provenance_and_lineage_traces_it_to_the_endpoint(project, monkeypatch, capsys):
    result = project.materialize(
        "breast_cancer", *DEPLOYED, tags={APPROVER_TAG: "alice", TRIGGER_TAG: "label batch labels-0002.csv"}
    )
    assert result.success, failures(result)
    store = FsspecArtifactStore(root=str(project.layout.data))
    client = MlflowRegistryClient(project.layout.tracking_uri)
    spec_file = project.pipelines / "breast_cancer.yaml"
    recorded_spec = client.artifact("breast_cancer", "1", f"{PROVENANCE_FOLDER}/{SPEC_ARTIFACT}")
    assert recorded_spec == spec_file.read_bytes()
    freeze = client.artifact("breast_cancer", "1", f"{PROVENANCE_FOLDER}/{REQUIREMENTS_ARTIFACT}").decode()
    assert f"scikit-learn=={metadata.version('scikit-learn')}" in freeze.splitlines()

    tree = lineage("breast_cancer", None, store, client, None, "http://127.0.0.1:1")  # the store alone says

    raw = metadata_of(result, "breast_cancer", "raw_data")
    assert tree["version"] == "1"
    assert tree["source"]["files"] == [*raw["source_files"], *raw["label_files"]]
    assert (tree["source"]["snapshot_hash"], tree["source"]["rows"]) == (raw["content_hash"], raw["rows"])
    features = metadata_of(result, "breast_cancer", "validated_features")
    assert tree["source"]["quarantined_rows"] == features["rows_quarantined"]
    assert tree["training_set"]["rows"] == features["train_rows"]
    model = tree["model"]
    assert model["seed"] == {"random_state": None}  # LogisticRegression as the spec declares it: unseeded
    assert model["params"]["C"] == "0.5"
    assert model["trigger"] == "label batch labels-0002.csv"
    assert model["dagster_run_id"] == result.run_id
    assert model["git_dirty"] in (True, False) and len(model["git_sha"]) == 40
    assert tree["evaluation"]["gate"] == "passed" and "holdout_roc_auc" in tree["evaluation"]["metrics"]
    deployment = tree["deployment"]
    assert (deployment["approved_by"], deployment["endpoint"]) == ("alice", "http://127.0.0.1:1")
    assert "champion" in deployment["aliases"]

    monkeypatch.setenv("MLOPS_PIPELINES", str(project.pipelines))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert main(["lineage", "breast_cancer", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["model"] == {**model, "params": printed["model"]["params"]}
    assert printed["source"]["files"] == tree["source"]["files"]  # beside the snapshot: no DAGSTER_HOME needed
    assert main(["lineage", "breast_cancer", "--version", "1"]) == 0
    text = capsys.readouterr().out
    assert "-> training set" in text and "-> deployment: champion" in text
    assert main(["lineage", "breast_cancer", "--version", "7"]) == 2
