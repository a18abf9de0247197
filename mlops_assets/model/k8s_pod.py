"""The training pod and the step pods' resources on Kubernetes, built from a spec: plain dicts, no I/O.

``resources/k8s_trainer.py`` hands ``TrainingPod``'s parts to ``dagster_k8s.PipesK8sClient.run``, which builds the
pod with ``dagster_k8s.pipes.build_pod_body``. ``PipesK8sClient`` has no GPU argument: the GPU limit, the node
selector and the tolerations go in ``base_pod_spec``. Nothing here imports ``kubernetes`` or ``dagster_k8s``: the
assets' op_tags come from here when the code location loads (``assets.context``), and that must stay cheap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mlops_assets.environment import POD_SETTINGS
from mlops_assets.errors import MlopsError
from mlops_assets.naming import PIPELINE_TAG
from mlops_assets.spec import PipelineSpec
from mlops_assets.spec.estimators import ALLOWED_MODULES_ENV
from mlops_assets.spec.training import Resources

# The local trainer's entry point (mlops_assets/resources/trainer.py), run by the image's python.
TRAINING_COMMAND = ("python", "-m", "mlops_assets.model.training")
# What dagster-k8s's executor and run launcher read from an asset's op_tags.
K8S_CONFIG_TAG = "dagster-k8s/config"
RUN_ID_LABEL = "dagster/run-id"
# Passed on to the pod by value: the training process checks the spec's estimator against the allowed modules, as
# the Dagster process did, and finds the artifact store where the Dagster process does.
FORWARDED_ENV = (ALLOWED_MODULES_ENV, *POD_SETTINGS)


@dataclass(frozen=True)
class TrainingPod:
    """What ``PipesK8sClient.run`` takes besides the context and the Pipes extras."""

    image: str
    command: list[str]
    env: dict[str, str]
    base_pod_meta: dict[str, Any]
    base_pod_spec: dict[str, Any]


def training_pod(
    spec: PipelineSpec,
    run_id: str,
    default_image: str | None,
    environ: dict[str, str] | None = None,
    secrets: tuple[str, ...] = (),
) -> TrainingPod:
    """The training pod of ``spec`` in Dagster run ``run_id``: the spec's image, else ``default_image``.

    ``environ`` is the Dagster process's environment; only the variables in ``FORWARDED_ENV`` are taken from it.
    ``secrets`` name the Secrets every training pod mounts with ``envFrom`` (the object store's credentials),
    before the spec's own ``model.resources.env_from_secrets``.
    """
    resources = spec.model.resources
    image = resources.image or default_image
    if not image:
        raise MlopsError(
            f"pipeline {spec.name!r}: no image for the training pod; set model.resources.image in the spec "
            "or the Kubernetes trainer's image"
        )
    env = {"PYTHONUNBUFFERED": "1", **{k: v for k, v in (environ or {}).items() if k in FORWARDED_ENV}}
    return TrainingPod(image, list(TRAINING_COMMAND), env, pod_meta(spec, run_id), pod_spec(resources, secrets))


def pod_meta(spec: PipelineSpec, run_id: str) -> dict[str, Any]:
    """Labels that find a pipeline's training pods and the Dagster run that started one."""
    labels = {
        PIPELINE_TAG: label_value(spec.name),
        RUN_ID_LABEL: label_value(run_id),
        "app.kubernetes.io/component": "trainer",
        "app.kubernetes.io/managed-by": "mlops-assets",
    }
    return {"labels": labels}


def pod_spec(resources: Resources, secrets: tuple[str, ...] = ()) -> dict[str, Any]:
    """The pod spec ``build_pod_body`` completes with the image, the command and the Pipes environment."""
    container: dict[str, Any] = {"resources": container_resources(resources, gpu=True)}
    names = list(dict.fromkeys([*secrets, *resources.env_from_secrets]))
    if names:
        container["envFrom"] = [{"secretRef": {"name": name}} for name in names]
    spec: dict[str, Any] = {"containers": [container], "restartPolicy": "Never"}
    if resources.node_selector:
        spec["nodeSelector"] = dict(resources.node_selector)
    if resources.tolerations:
        spec["tolerations"] = [t.model_dump(exclude_none=True) for t in resources.tolerations]
    if resources.active_deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = resources.active_deadline_seconds
    return spec


def container_resources(resources: Resources, gpu: bool) -> dict[str, dict[str, str]]:
    """Requests and limits: CPU requested only (a CPU limit throttles), memory requested and limited alike, GPUs
    limited (Kubernetes requests as many as an extended resource's limit)."""
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if resources.cpu is not None:
        requests["cpu"] = resources.cpu
    if resources.memory is not None:
        requests["memory"] = limits["memory"] = resources.memory
    if gpu and resources.gpu > 0:
        limits[resources.gpu_resource] = str(resources.gpu)
    return {k: v for k, v in {"requests": requests, "limits": limits}.items() if v}


def step_op_tags(spec: PipelineSpec) -> dict[str, Any]:
    """The ``op_tags`` that give the pipeline's step pods the spec's CPU and memory under ``k8s_job_executor``
    (job-level tags do not reach step pods, and sensor-launched runs miss job-level settings); empty when the
    spec sets neither. Step pods get no GPU: only the training pod trains."""
    resources = container_resources(spec.model.resources, gpu=False)
    if not resources:
        return {}
    return {K8S_CONFIG_TAG: {"container_config": {"resources": resources}}}


def label_value(text: str) -> str:
    """``text`` as a Kubernetes label value: at most 63 of ``[A-Za-z0-9._-]``, alphanumeric at both ends."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", text)[:63].strip("._-")
