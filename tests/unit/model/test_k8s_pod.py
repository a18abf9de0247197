"""The training pod as dagster-k8s builds it from each bundled spec and from a GPU spec, validated against the
Kubernetes OpenAPI schema (kubernetes-validate, strict), and the step pods' op_tags as dagster-k8s reads them."""

import json
from pathlib import Path

import kubernetes
import kubernetes_validate
import pytest
import yaml
from dagster_k8s.job import USER_DEFINED_K8S_CONFIG_KEY, get_user_defined_k8s_config
from dagster_k8s.pipes import build_pod_body

from mlops_assets.errors import MlopsError
from mlops_assets.model.k8s_pod import (
    K8S_CONFIG_TAG,
    RUN_ID_LABEL,
    TRAINING_COMMAND,
    label_value,
    step_op_tags,
    training_pod,
)
from mlops_assets.naming import PIPELINE_TAG
from mlops_assets.spec import load_spec
from mlops_assets.spec.estimators import ALLOWED_MODULES_ENV
from tests.conftest import REPO

KUBERNETES_VERSION = "1.33.0"  # a version kubernetes-validate 1.37.0 ships strict schemas for
RUN_ID = "6f1c2a4e-8b3d-4e5f-9a7b-0c1d2e3f4a5b"
IMAGE = "registry.example.com/mlops-assets-trainer:1.0"
BUNDLED = sorted(p.stem for p in (REPO / "pipelines").glob("*.yaml"))
GPU_RESOURCES = {
    "gpu": 1,
    "cpu": "4",
    "memory": "16Gi",
    "node_selector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "image": "registry.example.com/mlops-assets-trainer:1.0-cuda",
    "active_deadline_seconds": 3600,
    "env_from_secrets": ["mlflow-credentials", "object-store-credentials"],
}


def gpu_spec(pipelines: Path, resources: dict = GPU_RESOURCES, name: str = "gpu_wine"):
    raw = yaml.safe_load((pipelines / "wine.yaml").read_text())
    raw["name"] = name
    raw["model"]["resources"] = resources
    path = pipelines / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_spec(path)


def pod_dict(spec, environ: dict[str, str] | None = None) -> dict:
    """The pod ``PipesK8sClient.run`` would create, as the JSON the API server receives."""
    pod = training_pod(spec, RUN_ID, IMAGE, environ)
    env = {**pod.env, "DAGSTER_PIPES_CONTEXT": "e30=", "DAGSTER_PIPES_MESSAGES": "e30="}
    body = build_pod_body("dagster-run-train", pod.image, pod.command, env, pod.base_pod_meta, pod.base_pod_spec)
    return kubernetes.client.ApiClient().sanitize_for_serialization(body)


def validate(manifest: dict) -> None:
    kubernetes_validate.validate({"apiVersion": "v1", "kind": "Pod", **manifest}, KUBERNETES_VERSION, strict=True)


def test_the_schema_version_is_one_kubernetes_validate_ships():
    def parts(version: str) -> tuple[int, ...]:
        return tuple(int(n) for n in version.split("."))

    assert parts(kubernetes_validate.utils.latest_version()) >= parts(KUBERNETES_VERSION)


@pytest.mark.parametrize("name", BUNDLED)
def test_each_bundled_spec_builds_a_valid_cpu_training_pod(name):
    spec = load_spec(REPO / "pipelines" / f"{name}.yaml")
    manifest = pod_dict(spec)
    validate(manifest)
    container = manifest["spec"]["containers"][0]
    assert container["image"] == IMAGE
    assert container["command"] == list(TRAINING_COMMAND)
    assert "resources" not in container or not container["resources"]
    assert "envFrom" not in container
    assert manifest["spec"]["restartPolicy"] == "Never"
    assert not {"nodeSelector", "tolerations", "activeDeadlineSeconds"} & manifest["spec"].keys()
    labels = manifest["metadata"]["labels"]
    assert labels[PIPELINE_TAG] == name and labels[RUN_ID_LABEL] == RUN_ID
    assert labels["app.kubernetes.io/part-of"] == "dagster"  # dagster-k8s's common labels are kept


def test_a_gpu_spec_builds_a_valid_gpu_pod_with_its_limits_selector_tolerations_and_secrets(pipelines):
    manifest = pod_dict(gpu_spec(pipelines), environ={ALLOWED_MODULES_ENV: "xgboost", "AWS_SECRET_ACCESS_KEY": "x"})
    validate(manifest)
    spec = manifest["spec"]
    (container,) = spec["containers"]
    assert container["image"] == GPU_RESOURCES["image"]
    assert container["command"] == ["python", "-m", "mlops_assets.model.training"]
    assert container["resources"] == {
        "requests": {"cpu": "4", "memory": "16Gi"},
        "limits": {"memory": "16Gi", "nvidia.com/gpu": "1"},
    }
    assert spec["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["activeDeadlineSeconds"] == 3600 and spec["restartPolicy"] == "Never"
    assert container["envFrom"] == [
        {"secretRef": {"name": "mlflow-credentials"}},
        {"secretRef": {"name": "object-store-credentials"}},
    ]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env[ALLOWED_MODULES_ENV] == "xgboost" and env["PYTHONUNBUFFERED"] == "1"
    assert "AWS_SECRET_ACCESS_KEY" not in env  # secrets travel by reference, never as values
    assert {"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"} <= env.keys()
    assert manifest["metadata"]["labels"][PIPELINE_TAG] == "gpu_wine"
    assert manifest["metadata"]["labels"]["app.kubernetes.io/component"] == "trainer"


def test_a_production_pod_finds_the_store_by_value_and_its_credentials_by_reference(pipelines):
    """The Dagster process's settings reach the pod as values (where the state is), the trainer's Secrets by name
    before the spec's own (what to read it with): the pod reads the training set from the object store."""
    environ = {
        "MLOPS_ENV": "production",
        "MLOPS_STORE_URL": "s3://mlops-assets/data",
        "AWS_ENDPOINT_URL": "https://minio.mlops:9000",
        "AWS_ACCESS_KEY_ID": "not-a-value-to-forward",
        "MLFLOW_TRACKING_TOKEN": "not-a-value-to-forward",
    }
    pod = training_pod(
        gpu_spec(pipelines), RUN_ID, IMAGE, environ, secrets=("mlops-object-store", "mlflow-credentials")
    )
    assert pod.env == {
        "PYTHONUNBUFFERED": "1",
        "MLOPS_ENV": "production",
        "MLOPS_STORE_URL": "s3://mlops-assets/data",
        "AWS_ENDPOINT_URL": "https://minio.mlops:9000",
    }
    assert pod.base_pod_spec["containers"][0]["envFrom"] == [  # each Secret once, the trainer's first
        {"secretRef": {"name": "mlops-object-store"}},
        {"secretRef": {"name": "mlflow-credentials"}},
        {"secretRef": {"name": "object-store-credentials"}},
    ]


def test_a_mig_profile_is_the_limit_of_its_own_extended_resource(pipelines):
    spec = gpu_spec(pipelines, {"gpu": 2, "gpu_resource": "nvidia.com/mig-1g.10gb"}, name="mig_wine")
    manifest = pod_dict(spec)
    validate(manifest)
    assert manifest["spec"]["containers"][0]["resources"] == {"limits": {"nvidia.com/mig-1g.10gb": "2"}}


def test_a_wrong_type_or_an_unknown_field_is_caught_by_the_strict_schema(pipelines):
    manifest = pod_dict(gpu_spec(pipelines))
    manifest["spec"]["activeDeadlineSeconds"] = "an hour"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(manifest)
    manifest = pod_dict(gpu_spec(pipelines))
    manifest["spec"]["containers"][0]["gpus"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(manifest)


def test_without_an_image_the_pod_is_refused_with_the_field_to_set():
    spec = load_spec(REPO / "pipelines" / "wine.yaml")
    with pytest.raises(MlopsError, match=r"set model\.resources\.image"):
        training_pod(spec, RUN_ID, None)


def test_op_tags_carry_cpu_and_memory_in_the_shape_dagster_k8s_reads_and_no_gpu(pipelines):
    tags = step_op_tags(gpu_spec(pipelines))
    assert list(tags) == [K8S_CONFIG_TAG] == [USER_DEFINED_K8S_CONFIG_KEY]
    config = get_user_defined_k8s_config({k: json.dumps(v) for k, v in tags.items()})
    assert config.container_config == {
        "resources": {"requests": {"cpu": "4", "memory": "16Gi"}, "limits": {"memory": "16Gi"}}
    }
    step_container = {"name": "step", "image": IMAGE, **config.container_config}
    validate({"metadata": {"name": "step"}, "spec": {"containers": [step_container]}})


@pytest.mark.parametrize("name", BUNDLED)
def test_a_spec_without_cpu_or_memory_adds_no_op_tags(name):
    assert step_op_tags(load_spec(REPO / "pipelines" / f"{name}.yaml")) == {}


def test_every_asset_of_a_pipeline_carries_its_step_op_tags_and_a_spec_without_resources_none(pipelines):
    """On the assets, not the job: dagster-k8s does not pass job-level tags to step pods, and runs a sensor
    launches miss job-level settings."""
    from mlops_assets.assets import build_pipeline_assets

    spec = gpu_spec(pipelines)
    expected = step_op_tags(spec)
    built = [a for a in build_pipeline_assets(spec, pipelines / "gpu_wine.yaml") if hasattr(a, "op")]
    assert len(built) >= 6  # Dagster keeps a dict tag as its JSON text
    assert all(json.loads(a.op.tags[K8S_CONFIG_TAG]) == expected[K8S_CONFIG_TAG] for a in built)
    assert {get_user_defined_k8s_config(a.op.tags).container_config["resources"]["requests"]["cpu"] for a in built} == {
        "4"
    }
    plain = build_pipeline_assets(load_spec(pipelines / "wine.yaml"), pipelines / "wine.yaml")
    assert all(K8S_CONFIG_TAG not in a.op.tags for a in plain if hasattr(a, "op"))


def test_label_values_are_what_kubernetes_accepts():
    assert label_value("churn model/v2") == "churn-model-v2"
    assert label_value("_" + "a" * 80) == "a" * 62
