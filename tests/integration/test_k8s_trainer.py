"""``K8sTrainer`` end to end through ``PipesK8sClient.run`` against a fake Kubernetes API server on loopback (see
``fake_kube_api.py``): the pod dagster-k8s creates is schema-checked, its command really trains, its Pipes messages
come back as pod logs, and the pod is deleted. No cluster, scheduler, image or GPU takes part."""

import dataclasses
from pathlib import Path

import dagster as dg
import yaml
from mlflow import MlflowClient

from mlops_assets.definitions.folder import build_definitions
from mlops_assets.model.k8s_pod import RUN_ID_LABEL, TRAINING_COMMAND
from mlops_assets.model.training import TRAINING_LOG
from mlops_assets.naming import CHALLENGER, PIPELINE_TAG
from mlops_assets.resources import local_resources
from mlops_assets.resources.k8s_trainer import K8sTrainer
from tests.conftest import QUIET, REPO, failures, metadata
from tests.integration.fake_kube_api import FakeKubeApi

UP_TO_TRAINING = ("raw_data", "feedback", "validated_features", "trained_model")


def materialize(pipelines, layout, instance, trainer, names=UP_TO_TRAINING):
    resources = dataclasses.replace(local_resources(layout), trainer=trainer)
    assets = [a for a in build_definitions(pipelines, resources).assets if a.key.path[0] == "breast_cancer"]
    return dg.materialize(
        assets,
        selection=[dg.AssetKey(["breast_cancer", n]) for n in names],
        resources=resources.by_key(),
        instance=instance,
        raise_on_error=False,
        run_config=QUIET,
    ), resources


def trainer_for(api: FakeKubeApi, tmp_path) -> K8sTrainer:
    kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
    return K8sTrainer(image="mlops-assets:test", namespace="mlops", kubeconfig_file=str(kubeconfig), poll_interval=0.05)


def with_resources(pipelines, resources: dict) -> None:
    path = pipelines / "breast_cancer.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["model"]["resources"] = resources
    path.write_text(yaml.safe_dump(raw))


def test_the_k8s_trainer_trains_in_a_pod_and_reports_like_the_subprocess_trainer(pipelines, layout, tmp_path):
    with_resources(pipelines, {"cpu": "1", "memory": "1Gi", "env_from_secrets": ["mlflow-credentials"]})
    secrets = {"mlflow-credentials": {"MLFLOW_TRACKING_TOKEN": "not-inlined"}}
    with FakeKubeApi(secrets, workdir=REPO) as api, dg.instance_for_test() as instance:
        trainer = trainer_for(api, tmp_path)
        result, resources = materialize(pipelines, layout, instance, trainer)
        assert result.success, failures(result) + "\n".join(api.requests)
        assert not api.rejected

        (pod,) = api.created
        container = pod["spec"]["containers"][0]
        assert container["command"] == list(TRAINING_COMMAND) and container["image"] == "mlops-assets:test"
        assert container["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}
        assert container["envFrom"] == [{"secretRef": {"name": "mlflow-credentials"}}]
        assert "MLFLOW_TRACKING_TOKEN" not in {e["name"] for e in container["env"]}
        labels = pod["metadata"]["labels"]
        assert labels[PIPELINE_TAG] == "breast_cancer" and labels[RUN_ID_LABEL] == result.run_id
        assert api.deleted == [pod["metadata"]["name"]]

        trained = metadata(result, "breast_cancer", "trained_model")
        assert trained["model_version"] == "1" and trained["device"] == "cpu" and trained["training_rows"] > 0
        assert resources.registry.by_alias("breast_cancer", CHALLENGER).version == "1"
        # the training process's Pipes log messages reached the Dagster run through the pod's log
        messages = [e.user_message for e in instance.all_logs(result.run_id)]
        assert any(m.startswith("training ") and " rows " in m for m in messages)
        assert any("registered breast_cancer version 1" in m for m in messages)
        # and the MLflow run keeps them: the pod, and its log, are gone
        run_id = resources.registry.get("breast_cancer", "1").run_id
        client = MlflowClient(tracking_uri=layout.tracking_uri, registry_uri=layout.tracking_uri)
        kept = Path(client.download_artifacts(run_id, TRAINING_LOG, str(tmp_path))).read_text().splitlines()
        assert kept[0].startswith("training LogisticRegression on ") and kept[-1].startswith("registered breast_cancer")


def test_a_training_that_fails_in_its_pod_fails_the_asset_deletes_the_pod_and_registers_nothing(
    pipelines, layout, tmp_path
):
    path = pipelines / "breast_cancer.yaml"
    path.write_text(path.read_text().replace("params: {C: 0.5, max_iter: 1000}", "params: {C: -1.0}"))
    with FakeKubeApi(workdir=REPO) as api, dg.instance_for_test() as instance:
        trainer = trainer_for(api, tmp_path)
        result, resources = materialize(pipelines, layout, instance, trainer)
        assert not result.success
        # dagster-k8s puts the container's last log lines into the step's error
        assert "The 'C' parameter of LogisticRegression must be" in failures(result)
        (pod,) = api.created
        assert api.deleted == [pod["metadata"]["name"]]
        assert any("InvalidParameterError" in line for line in api.logs[pod["metadata"]["name"]])
        assert resources.registry.by_alias("breast_cancer", CHALLENGER) is None
