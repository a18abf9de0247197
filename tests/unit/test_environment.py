"""``MLOPS_ENV`` picks the resources; the specs never change between a laptop and a cluster."""

import dagster as dg
import pytest

from mlops_assets.environment import Settings
from mlops_assets.errors import MlopsError
from mlops_assets.resources import DAGSTER_IO, resources_from_env
from mlops_assets.resources.artifact_store import FsspecArtifactStore
from mlops_assets.resources.endpoint import LocalProcessDeployer
from mlops_assets.resources.k8s_endpoint import KubernetesEndpointDeployer
from mlops_assets.resources.k8s_trainer import K8sTrainer
from mlops_assets.resources.mlflow_registry import MlflowRegistry
from mlops_assets.resources.trainer import SubprocessTrainer

PRODUCTION = {
    "MLOPS_ENV": "production",
    "MLOPS_STORE_URL": "s3://mlops-assets/data/",
    "MLFLOW_TRACKING_URI": "http://mlflow.mlops:5000",
}


def test_without_variables_the_embedded_default_trains_in_a_subprocess():
    settings = Settings.from_env({})
    assert (settings.env, settings.trainer, settings.production) == ("local", "subprocess", False)


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"MLOPS_ENV": "prod"}, "MLOPS_ENV='prod'"),
        ({"MLOPS_ENV": "production"}, "MLOPS_STORE_URL and MLFLOW_TRACKING_URI"),
        ({**PRODUCTION, "MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"}, "MLFLOW_TRACKING_URI='sqlite:///mlflow.db'"),
        ({**PRODUCTION, "MLOPS_TRAINER": "slurm"}, "MLOPS_TRAINER='slurm'"),
        ({**PRODUCTION, "MLOPS_DEPLOYER": "docker"}, "MLOPS_DEPLOYER='docker'"),
    ],
)
def test_a_setting_that_cannot_work_is_refused_with_its_variable_named(environ, named):
    with pytest.raises(MlopsError, match=named.replace("(", r"\(")):
        Settings.from_env(environ)


def test_production_keeps_state_in_the_object_store_and_trains_in_pods(monkeypatch, tmp_path):
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    for name, value in {
        **PRODUCTION,
        "MLOPS_TRAINER_IMAGE": "registry.example.com/mlops-trainer:0.1.0",
        "MLOPS_TRAINER_NAMESPACE": "mlops",
        "MLOPS_TRAINER_ENV_SECRETS": "mlops-object-store, mlflow-token",
    }.items():
        monkeypatch.setenv(name, value)
    resources = resources_from_env()
    assert resources.store == FsspecArtifactStore(root="s3://mlops-assets/data")
    assert resources.store.uri("p/raw_data/x.parquet") == "s3://mlops-assets/data/p/raw_data/x.parquet"
    assert resources.registry == MlflowRegistry(uri="http://mlflow.mlops:5000")  # artifacts: the server's
    assert resources.trainer == K8sTrainer(
        image="registry.example.com/mlops-trainer:0.1.0",
        namespace="mlops",
        env_secrets=["mlops-object-store", "mlflow-token"],
    )
    assert resources.deployer.tracking_uri == "http://mlflow.mlops:5000"  # outside a pod: local processes
    assert resources.io_manager == dg.FilesystemIOManager(base_dir=f"s3://mlops-assets/data/{DAGSTER_IO}")

    monkeypatch.setenv("MLOPS_TRAINER", "subprocess")  # production state, training beside the code location
    assert isinstance(resources_from_env().trainer, SubprocessTrainer)

    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")  # in a pod, as the chart's code server and runs
    monkeypatch.setenv("MLOPS_ENDPOINT_NAMESPACE", "serving")
    assert resources_from_env().deployer == KubernetesEndpointDeployer(namespace="serving")
    monkeypatch.setenv("MLOPS_DEPLOYER", "local")
    assert isinstance(resources_from_env().deployer, LocalProcessDeployer)


def test_the_embedded_default_keeps_everything_under_mlops_home(monkeypatch, tmp_path):
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    resources = resources_from_env()
    assert resources.store.uri("p/x") == str(tmp_path / "data" / "p" / "x")
    assert resources.registry.uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert isinstance(resources.trainer, SubprocessTrainer)


def test_a_bare_postgresql_url_means_psycopg2_which_dagster_postgres_needs():
    """The Dagster chart hands dagster-postgres a bare ``postgresql://`` URL, and MLflow backend URIs are mostly
    written so: under SQLAlchemy 2.1 that meant psycopg 3, absent here, and the webserver and ``mlflow server`` died
    on ``No module named 'psycopg'`` (and with psycopg 3, dagster-postgres's NOTIFY fails)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine("postgresql://dagster@127.0.0.1:5432/dagster")  # no connection is made
    assert engine.dialect.driver == "psycopg2"
