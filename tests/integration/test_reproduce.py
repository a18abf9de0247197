"""A registered version is rebuilt from what it recorded: its stored snapshot, training set and spec artifact,
whatever became of the source files and the spec on disk since; altered stored data are refused."""

import shutil

import pandas as pd
import pytest
from mlflow import MlflowClient

from mlops_assets.cli.commands import main
from mlops_assets.governance.reproduce import ReproductionError, reproduce
from mlops_assets.model.registry import MlflowRegistryClient
from mlops_assets.naming import CHALLENGER, CHAMPION
from mlops_assets.resources.artifact_store import FsspecArtifactStore
from tests.conftest import failures

TRAINING = ("raw_data", "feedback", "validated_features", "trained_model", "evaluation_report")


@pytest.fixture
def trained(project, monkeypatch):
    """breast_cancer trained and evaluated once (v1), the CLI pointed at the same stores."""
    result = project.materialize("breast_cancer", *TRAINING)
    assert result.success, failures(result)
    monkeypatch.setenv("MLOPS_PIPELINES", str(project.pipelines))
    return project


def stores(project):
    return FsspecArtifactStore(root=str(project.layout.data)), MlflowRegistryClient(project.layout.tracking_uri)


def test_a_version_is_reproduced_exactly_after_its_source_files_changed_and_were_deleted(trained, capsys):
    data = trained.pipelines / "data" / "breast_cancer"
    features = pd.read_csv(data / "features.csv")
    features.assign(mean_radius=features["mean_radius"] * 2).to_csv(data / "features.csv", index=False)
    shutil.rmtree(data / "labels")
    (trained.pipelines / "breast_cancer.yaml").write_text("name: breast_cancer\n")  # the spec on disk changed too
    store, client = stores(trained)

    reproduction = reproduce("breast_cancer", "1", store, client)

    assert reproduction.reproduced and reproduction.tolerance == 0.0
    names = {m.name for m in reproduction.metrics}
    assert {"train_roc_auc", "holdout_roc_auc", "holdout_accuracy", "holdout_log_loss"} <= names
    assert all(m.recorded == m.reproduced for m in reproduction.metrics)
    assert reproduction.environment_differences == []
    assert main(["reproduce", "breast_cancer", "--version", "1"]) == 0
    out = capsys.readouterr().out
    assert "reproduced" in out and "holdout_roc_auc" in out
    assert client.by_alias("breast_cancer", CHALLENGER).version == "1"  # nothing registered, no alias moved
    assert client.by_alias("breast_cancer", CHAMPION) is None


def test_an_altered_training_set_is_refused_with_both_hashes_and_nothing_registered(trained, capsys):
    store, client = stores(trained)
    tags = client.get("breast_cancer", "1").tags
    key = tags["training_set"]
    train = pd.read_parquet(store.uri(key))
    train.assign(mean_radius=train["mean_radius"] + 0.001).to_parquet(store.uri(key), index=False)

    assert main(["reproduce", "breast_cancer", "--version", "1"]) == 1

    error = capsys.readouterr().err
    assert key in error and tags["training_set_hash"] in error and "altered" in error
    with pytest.raises(ReproductionError, match="was altered"):
        reproduce("breast_cancer", "1", store, client)
    assert client.by_alias("breast_cancer", CHALLENGER).version == "1"
    uri = trained.layout.tracking_uri
    versions = MlflowClient(tracking_uri=uri, registry_uri=uri).search_model_versions("name = 'breast_cancer'")
    assert [str(v.version) for v in versions] == ["1"]


def test_an_altered_raw_snapshot_is_refused(trained, capsys):
    store, client = stores(trained)
    dataset_hash = client.get("breast_cancer", "1").tags["dataset_hash"]
    key = f"breast_cancer/raw/{dataset_hash}.parquet"
    raw = pd.read_parquet(store.uri(key))
    raw.iloc[:-1].to_parquet(store.uri(key), index=False)

    assert main(["reproduce", "breast_cancer", "--version", "1"]) == 1

    error = capsys.readouterr().err
    assert "raw snapshot" in error and dataset_hash in error
