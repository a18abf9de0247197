"""Every asset built from the bundled specs carries the badges of what it runs on, the model's library included."""

from pathlib import Path

import dagster as dg

from mlops_assets.assets.kinds import Kind, file_kinds
from mlops_assets.definitions.folder import build_definitions
from mlops_assets.naming import PORTFOLIO

REPO = Path(__file__).resolve().parents[3]
BY_ASSET = {
    "raw_data": {Kind.pandas, Kind.parquet},
    "validated_features": {Kind.pandera, Kind.parquet},
    "evaluation_report": {Kind.mlflow, Kind.matplotlib},
    "deployed_endpoint": {Kind.mlflow, Kind.python},
    "drift_report": {Kind.scipy, Kind.matplotlib},
    "feedback": {Kind.pandas, Kind.parquet},
    "inference_log": {Kind.parquet},
    "labels": {Kind.csv},  # breast_cancer's label batches: data/breast_cancer/labels/*.csv
    "batch_predictions": {Kind.mlflow, Kind.parquet},
}
MODEL = {"breast_cancer": Kind.scikit_learn, "diabetes": Kind.scikit_learn, "wine": Kind.pytorch}


def test_the_bundled_pipelines_assets_carry_their_kinds():
    specs = [spec for asset in build_definitions(REPO / "pipelines").assets for spec in _specs(asset)]
    kinds = {spec.key.to_user_string(): spec.kinds for spec in specs}
    assert kinds.pop(PORTFOLIO) == {Kind.python}
    for key, found in kinds.items():
        pipeline, name = key.split("/")
        expected = {MODEL[pipeline], Kind.mlflow} if name == "trained_model" else BY_ASSET[name]
        assert found == expected, key
    assert {key.split("/")[0] for key in kinds} == set(MODEL)


def test_a_file_kind_comes_from_a_known_suffix_only():
    assert file_kinds("labels/*.parquet") == {Kind.parquet} and file_kinds("s3://bucket/labels/batch.CSV") == {Kind.csv}
    assert file_kinds("labels/") == set() and file_kinds("data.v2/labels") == set()


def _specs(asset: dg.AssetsDefinition | dg.AssetSpec) -> list[dg.AssetSpec]:
    return list(asset.specs) if isinstance(asset, dg.AssetsDefinition) else [asset]


def test_where_the_environment_trains_and_serves_shows_on_the_model_and_the_endpoint(tmp_path):
    from mlops_assets.resources.k8s_endpoint import KubernetesEndpointDeployer
    from mlops_assets.resources.k8s_trainer import K8sTrainer

    resources = {"trainer": K8sTrainer(image="trainer:1"), "deployer": KubernetesEndpointDeployer()}
    specs = [spec for asset in build_definitions(REPO / "pipelines", resources).assets for spec in _specs(asset)]
    on_pods = {s.key.to_user_string() for s in specs if "kubernetes" in s.kinds}
    assert on_pods == {f"{p}/{n}" for p in MODEL for n in ("trained_model", "deployed_endpoint")}
    trained = next(s for s in specs if s.key.to_user_string() == "wine/trained_model")
    assert trained.kinds == {Kind.pytorch, Kind.mlflow, "kubernetes"}  # the spec's own kinds are kept
