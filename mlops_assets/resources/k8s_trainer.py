"""The Kubernetes trainer: the training entry point as a pod (a GPU pod when the spec asks for one), through Pipes.

Production's default trainer (``MLOPS_TRAINER=kubernetes``, ``mlops_assets.resources``). The pod reads the training set
from the object store and reports to the MLflow tracking server, at the addresses the request names.
``dagster_k8s`` (and with it the ``kubernetes`` client) is imported when a training starts, not when the code
location loads.
"""

from __future__ import annotations

import os
from dataclasses import asdict

import dagster as dg
from pydantic import Field

from mlops_assets.contracts import Trainer
from mlops_assets.environment import KUBERNETES
from mlops_assets.model.k8s_pod import training_pod
from mlops_assets.records import TrainingRequest, TrainingResult
from mlops_assets.spec import load_spec


class K8sTrainer(Trainer):
    """Runs ``python -m mlops_assets.model.training`` in a pod built from the spec's ``model.resources`` by
    ``dagster_k8s.PipesK8sClient``: the pod's logs carry the Pipes messages (the same ones the subprocess
    trainer reports) and its other output, forwarded to the run; the pod is deleted when it ends."""

    runs_on = KUBERNETES

    image: str | None = Field(default=None, description="Image of the training pod unless the spec names one.")
    namespace: str | None = Field(
        default=None, description="Namespace of the training pods (default: the current one, else `default`)."
    )
    load_incluster_config: bool | None = Field(
        default=None, description="Read the pod's service account (default: when KUBERNETES_SERVICE_HOST is set)."
    )
    env_secrets: list[str] = Field(
        default_factory=list,
        description="Secrets every training pod mounts with envFrom (the object store's credentials), by name.",
    )
    kubeconfig_file: str | None = Field(default=None, description="Kubeconfig outside a cluster.")
    kube_context: str | None = Field(default=None, description="Context of the kubeconfig.")
    poll_interval: float = Field(default=10.0, gt=0, description="Seconds between two reads of the pod's state.")
    pod_wait_timeout: float = Field(
        default=24 * 3600.0, ge=0, description="Most seconds a training may take (0: no limit)."
    )

    def train(self, context: dg.AssetExecutionContext, request: TrainingRequest) -> TrainingResult:
        from dagster_k8s import PipesK8sClient

        spec = load_spec(request.spec_path)
        pod = training_pod(spec, context.run_id, self.image, dict(os.environ), tuple(self.env_secrets))
        client = PipesK8sClient(
            load_incluster_config=self.load_incluster_config,
            kubeconfig_file=self.kubeconfig_file,
            kube_context=self.kube_context,
            poll_interval=self.poll_interval,
        )
        invocation = client.run(
            context=context,
            extras={"request": asdict(request)},
            image=pod.image,
            command=pod.command,
            namespace=self.namespace,
            env=pod.env,
            base_pod_meta=pod.base_pod_meta,
            base_pod_spec=pod.base_pod_spec,
            pod_wait_timeout=self.pod_wait_timeout,
        )
        messages = invocation.get_custom_messages()
        if not messages:
            raise dg.Failure("the training pod ended without reporting a model version")
        return TrainingResult.from_message(messages[-1])
