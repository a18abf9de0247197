"""``model.resources``: where a model trains on Kubernetes. Absent, nothing changes; wrong, the field is named."""

from pathlib import Path

from mlops_assets.spec import load_spec
from mlops_assets.spec.training import Resources
from tests.unit.spec.test_pipeline import problems, write_variant


def with_resources(pipelines: Path, resources: dict) -> Path:
    return write_variant(pipelines, lambda raw: raw["model"].update(resources=resources))


def test_every_bundled_spec_trains_without_gpu_or_settings(pipelines):
    for path in sorted(pipelines.glob("*.yaml")):
        assert load_spec(path).model.resources == Resources()


def test_resources_at_their_defaults_leave_the_spec_hash_unchanged(pipelines):
    original = load_spec(pipelines / "breast_cancer.yaml")
    assert load_spec(with_resources(pipelines, {"gpu": 0})).spec_hash == original.spec_hash
    assert load_spec(with_resources(pipelines, {"gpu": 1})).spec_hash != original.spec_hash


def test_a_gpu_spec_loads_with_its_selector_tolerations_and_secrets(pipelines):
    resources = {
        "gpu": 1,
        "gpu_resource": "nvidia.com/mig-1g.10gb",
        "node_selector": {"pool": "gpu"},
        "cpu": "500m",
        "memory": "4Gi",
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "active_deadline_seconds": 600,
        "env_from_secrets": ["mlflow-credentials"],
    }
    loaded = load_spec(with_resources(pipelines, resources)).model.resources
    assert loaded.gpu == 1 and loaded.gpu_resource == "nvidia.com/mig-1g.10gb"
    assert loaded.tolerations[0].key == "nvidia.com/gpu" and loaded.env_from_secrets == ["mlflow-credentials"]


def test_wrong_resources_are_reported_with_their_field_paths(pipelines):
    message = problems(
        with_resources(
            pipelines,
            {
                "gpu": -1,
                "gpu_resource": "gpu",
                "memory": "4 gigabytes",
                "active_deadline_seconds": 0,
                "env_from_secrets": ["MLflow_Credentials"],
                "tolerations": [{"operator": "Exists", "value": "x"}],
                "gpus": 1,
            },
        )
    )
    for field in ("gpu", "gpu_resource", "memory", "active_deadline_seconds", "env_from_secrets.0", "tolerations.0"):
        assert f"model.resources.{field}" in message
    assert "unknown field(s) 'gpus'" in message
