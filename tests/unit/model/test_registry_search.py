"""``ModelRegistry.tagged``: the versions that share a training set, from a real MLflow registry (SQLite) and the
in-memory fake alike, so the copy guard of ``trained_model`` reads the same answer from both."""

import pytest

from mlops_assets.model.registry import MlflowRegistryClient
from tests.unit.fakes import MemoryModelRegistry

HASHES = ["aaa", "bbb", "aaa", "it's", "x' or name != '"]


@pytest.fixture(scope="module")
def registries(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow")
    mlflow = MlflowRegistryClient(f"sqlite:///{folder / 'mlflow.db'}", str(folder / "artifacts"))
    client = mlflow._client()
    fake = MemoryModelRegistry()
    for model in ("loans", "other"):
        client.create_registered_model(model)
        for rows_hash in HASHES:
            version = client.create_model_version(
                model, source=str(folder / "model"), tags={"training_rows_hash": rows_hash}
            )
            fake.register(model, tags={"training_rows_hash": rows_hash})
            assert version.version
    return mlflow, fake


@pytest.mark.parametrize(
    ("value", "versions"),
    [("aaa", ["1", "3"]), ("bbb", ["2"]), ("ccc", []), ("it's", ["4"]), ("x' or name != '", ["5"])],
)
def test_the_versions_of_one_training_set_are_found_in_one_model_only(registries, value, versions):
    """A quote in a value is matched as text: it can neither break the filter nor widen it to every version."""
    for registry in registries:
        found = registry.tagged("loans", "training_rows_hash", value)
        assert [v.version for v in found] == versions
        assert all(v.name == "loans" and v.tags["training_rows_hash"] == value for v in found)
