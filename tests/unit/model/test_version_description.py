"""The model card is a registered version's description, where MLflow's users look, and the registered model says
what the pipeline is. The in-memory registry describes a version as the MLflow registry (SQLite) does."""

import dagster as dg
import pyarrow as pa
import pytest
from mlflow import MlflowClient

from mlops_assets.assets.context import PipelineContext
from mlops_assets.assets.evaluation_report import build_evaluation_report
from mlops_assets.data.locations import EVALUATION_FOLDER
from mlops_assets.model.registry import DESCRIPTION_LIMIT, MlflowRegistryClient, fitted_description, model_description
from mlops_assets.naming import asset_keys
from mlops_assets.records import FeatureSet, TrainedModel
from mlops_assets.resources.artifact_store import FsspecArtifactStore
from mlops_assets.resources.mlflow_registry import MlflowRegistry
from tests.conftest import QUIET, REPO, metadata
from tests.in_process_training import train_and_register
from tests.unit.fakes import MemoryModelRegistry

BREAST_CANCER = REPO / "pipelines" / "breast_cancer.yaml"


def card(sections: int, lines: int) -> str:
    body = "".join(
        f"\n## Section {s}\n\n" + "".join(f"- line {s}.{n}\n" for n in range(lines)) for s in range(sections)
    )
    return "# Model card: p version 1\n" + body


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory) -> MlflowRegistry:
    """One MLflow registry on SQLite for the module: creating its tables is most of a test's time."""
    folder = tmp_path_factory.mktemp("mlflow")
    return MlflowRegistry(uri=f"sqlite:///{folder / 'mlflow.db'}", artifact_root=str(folder / "artifacts"))


@pytest.fixture(scope="module")
def registries(mlflow, tmp_path_factory):
    """The MLflow registry and the fake, each with versions 1, 2 and 3 of ``p``."""
    client = MlflowClient(tracking_uri=mlflow.uri, registry_uri=mlflow.uri)
    client.create_registered_model("p")
    fake = MemoryModelRegistry()
    for _ in range(3):
        client.create_model_version("p", source=str(tmp_path_factory.mktemp("model")))
        fake.register("p")
    return mlflow, client, fake


def test_a_card_that_fits_is_the_description_whole_in_mlflow_and_in_the_fake(registries):
    mlflow, client, fake = registries
    short = card(3, 4)
    for registry in (mlflow, fake):
        registry.describe("p", "2", short)
    assert client.get_model_version("p", "2").description == fake.description("p", "2") == short
    assert not client.get_model_version("p", "3").description and fake.description("p", "3") is None


@pytest.mark.parametrize(("sections", "lines"), [(40, 12), (1, 1000)])
def test_a_card_longer_than_the_registry_keeps_is_cut_at_a_line_in_mlflow_and_in_the_fake(registries, sections, lines):
    """MLflow's SQL column holds 5,000 characters: PostgreSQL would refuse the whole card."""
    mlflow, client, fake = registries
    long = card(sections, lines)
    for registry in (mlflow, fake):
        registry.describe("p", "1", long)
    described = client.get_model_version("p", "1").description
    assert described == fake.description("p", "1") == fitted_description(long)
    assert len(long) > DESCRIPTION_LIMIT >= len(described)
    kept, note = described.rsplit("\n\n", 1)
    assert long.startswith(kept + "\n") and len(kept) > DESCRIPTION_LIMIT - 200  # whole lines, as many as fit
    assert f"`{EVALUATION_FOLDER}`" in note


@pytest.fixture(scope="module")
def registered(mlflow):
    """breast_cancer's version 1, trained and registered as the trainer does."""
    return mlflow, train_and_register(MlflowRegistryClient(mlflow.uri, mlflow.artifact_root), BREAST_CANCER)


def test_an_evaluation_makes_the_model_card_the_versions_description(registered, layout, tmp_path):
    registry, trained = registered
    store = FsspecArtifactStore(root=str(tmp_path / "store"))
    store.write_table("holdout.parquet", pa.Table.from_pandas(trained.holdout, preserve_index=False))
    version, name = trained.version, trained.spec.name
    features = FeatureSet("features", "train.parquet", "holdout.parquet", None, "dataset")

    @dg.asset(key=asset_keys(name)["trained_model"])
    def trained_model() -> TrainedModel:
        return TrainedModel(name, version.version, version.run_id, features, "manual")

    evaluation_report = build_evaluation_report(PipelineContext(trained.spec, BREAST_CANCER))
    resources = {"store": store, "registry": registry, "io_manager": dg.mem_io_manager}
    result = dg.materialize([trained_model, evaluation_report], resources=resources, run_config=QUIET)

    assert result.success
    shown = metadata(result, name, "evaluation_report")["model_card"]
    client = MlflowClient(tracking_uri=registry.uri, registry_uri=registry.uri)
    assert client.get_model_version(name, version.version).description == fitted_description(shown)
    assert shown.startswith(f"# Model card: {name} version {version.version}") and "## Gate: " in shown


def test_the_first_registration_describes_the_registered_model_and_a_later_one_keeps_an_edit(registered):
    registry, trained = registered
    client = MlflowClient(tracking_uri=registry.uri, registry_uri=registry.uri)
    described = client.get_registered_model(trained.spec.name).description
    assert described == model_description(trained.spec) and described.startswith(trained.spec.description)
    client.update_registered_model(trained.spec.name, description="edited in MLflow's UI")
    train_and_register(MlflowRegistryClient(registry.uri, registry.artifact_root), BREAST_CANCER)
    assert client.get_registered_model(trained.spec.name).description == "edited in MLflow's UI"
