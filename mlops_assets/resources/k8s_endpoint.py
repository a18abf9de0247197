"""The endpoint as a Kubernetes Deployment (deploy/k8s): a promotion is a rolling update.

A pipeline's endpoint is the Deployment ``mlops-endpoint-<pipeline>`` (underscores as dashes) behind the Service of
the same name. Its pods serve the registry's champion, read when they start. A promotion moves the alias first
(rollout/deployment.py); this deployer then stamps the version on the pod template, and Kubernetes replaces the
pods one by one, each new one ready (``/ping``) before an old one goes (``maxUnavailable: 0``). It waits as
``kubectl rollout status`` does. A rollout that does not complete in time is undone (the template's stamp goes
back), so the old pods keep serving, and the deployment's failure moves the alias back.

Kubernetes restarts a crashed pod itself, so ``crashed`` is always ``None``. The canary, shadow and ab strategies
route inside one endpoint process; behind a Service of several replicas each request reaches one of them, so
they are refused here with the reason: on Kubernetes the rolling update (``strategy: replace``) is the strategy.
``kubernetes`` is imported when a deployment starts, not when the code location loads.
"""

from __future__ import annotations

import os
import time
import urllib.error
from typing import Any

import dagster as dg
from pydantic import Field

from mlops_assets.contracts import EndpointDeployer
from mlops_assets.environment import KUBERNETES
from mlops_assets.errors import MlopsError
from mlops_assets.model.k8s_pod import label_value
from mlops_assets.records import EndpointStatus, RegisteredModel, Rollout
from mlops_assets.resources.endpoint import request_json

VERSION_ANNOTATION = "mlops-assets/model-version"  # on the pod template: the version its pods were rolled for
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
ADMIN_TOKEN_ENV = "MLOPS_ADMIN_TOKEN"  # the endpoint's admin token, from the same Secret the endpoint reads


def deployment_name(pipeline: str) -> str:
    return label_value(f"mlops-endpoint-{pipeline}".replace("_", "-").lower())


def rollout_progress(deployment: dict[str, Any]) -> str | None:
    """What a Deployment's rollout still waits for, as ``kubectl rollout status`` judges it; ``None``: complete.
    Raises when Kubernetes has given up on it (its progress deadline passed)."""
    metadata, spec, status = deployment["metadata"], deployment["spec"], deployment.get("status") or {}
    if status.get("observedGeneration", 0) < metadata.get("generation", 0):
        return "the controller to see the new pod template"
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            raise MlopsError(
                f"deployment {metadata['name']} exceeded its progress deadline: {condition.get('message')}"
            )
    replicas = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    if updated < replicas:
        return f"{updated} of {replicas} replicas updated"
    if status.get("replicas", 0) > updated:
        return f"{status['replicas'] - updated} old replicas to terminate"
    if status.get("availableReplicas", 0) < updated:
        return f"{status.get('availableReplicas', 0)} of {updated} updated replicas available"
    return None


class KubernetesEndpointDeployer(EndpointDeployer):
    """Rolls the pipeline's endpoint Deployment to the champion and reads its status through its Service."""

    runs_on = KUBERNETES

    namespace: str | None = Field(
        default=None, description="Namespace of the endpoint Deployments (default: the current one, else `default`)."
    )
    url_template: str = Field(
        default="http://{deployment}.{namespace}.svc:8080",
        description="The endpoint's Service URL; {deployment} and {namespace} are filled in.",
    )
    rollout_timeout_s: float = Field(default=900.0, gt=0, description="Most seconds a rolling update may take.")
    poll_interval: float = Field(default=2.0, gt=0, description="Seconds between two reads of the rollout.")
    load_incluster_config: bool | None = Field(
        default=None, description="Read the pod's service account (default: when KUBERNETES_SERVICE_HOST is set)."
    )
    kubeconfig_file: str | None = Field(default=None, description="Kubeconfig outside a cluster.")
    kube_context: str | None = Field(default=None, description="Context of the kubeconfig.")

    def running_url(self, name: str) -> str | None:
        deployment = self._read(self._api(), name)
        available = (deployment or {}).get("status", {}).get("availableReplicas", 0)
        return self._url(name) if available else None

    def deploy(self, spec_path: str, model: RegisteredModel, log_uri: str) -> str:
        name, api = model.name, self._api()  # one client for the whole rollout, not one per poll
        deployment = self._read(api, name)
        if deployment is None:
            raise dg.Failure(
                f"no Deployment {deployment_name(name)} in namespace {self._namespace()}: apply the endpoint's "
                "manifests first (docs/kubernetes.md, Run on Kubernetes)"
            )
        before = (deployment["spec"]["template"]["metadata"].get("annotations") or {}).get(VERSION_ANNOTATION)
        if before != model.version:
            self._stamp(api, name, model.version)
        try:
            self._wait_for_rollout(api, name)
        except MlopsError as exc:
            if before != model.version:
                self._stamp(api, name, before)  # undone: the old pods, still serving, stay
            raise dg.Failure(f"the endpoint did not roll to version {model.version}: {exc}") from None
        url = self._url(name)
        serving = request_json(f"{url}/version", os.environ.get(ADMIN_TOKEN_ENV))["model_version"]
        if serving != model.version:
            raise dg.Failure(f"endpoint {url} serves version {serving}, expected {model.version}")
        return url

    def start_rollout(self, name: str, rollout: Rollout) -> EndpointStatus:
        raise dg.Failure(
            f"deployment.strategy {rollout.mode} routes inside one endpoint process; the {name} endpoint on "
            "Kubernetes is a Deployment of several replicas behind a Service, so its rolling update is the "
            "strategy there: set deployment.strategy: replace"
        )

    def rollout_status(self, name: str) -> EndpointStatus:
        url = self._url(name)
        try:
            return EndpointStatus.from_json(request_json(f"{url}/admin/status", os.environ.get(ADMIN_TOKEN_ENV)))
        except urllib.error.HTTPError as exc:
            raise dg.Failure(f"endpoint {url} refused /admin/status: {exc.read().decode()}") from exc

    def end_rollout(self, name: str) -> EndpointStatus:
        return self.rollout_status(name)  # no rollout runs inside a Deployment's pods (start_rollout)

    def crashed(self, name: str) -> str | None:
        return None  # Kubernetes restarts the pods, and the Deployment keeps its replicas

    def restart(self, name: str) -> str:
        raise dg.Failure(f"Kubernetes restarts the {name} endpoint's pods itself")

    def _api(self):
        import kubernetes

        incluster = self.load_incluster_config
        if incluster is None:
            incluster = "KUBERNETES_SERVICE_HOST" in os.environ
        if incluster:
            kubernetes.config.load_incluster_config()
            client = kubernetes.client.ApiClient()
        else:
            client = kubernetes.config.new_client_from_config(
                config_file=self.kubeconfig_file, context=self.kube_context
            )
        return kubernetes.client.AppsV1Api(client)

    def _namespace(self) -> str:
        if self.namespace:
            return self.namespace
        if os.path.exists(NAMESPACE_FILE):
            with open(NAMESPACE_FILE) as file:
                return file.read().strip()
        if self.kubeconfig_file or not self.load_incluster_config:
            import kubernetes

            try:
                _, current = kubernetes.config.list_kube_config_contexts(config_file=self.kubeconfig_file)
                return current["context"].get("namespace", "default")
            except kubernetes.config.ConfigException:
                pass
        return "default"

    def _url(self, name: str) -> str:
        return self.url_template.format(deployment=deployment_name(name), namespace=self._namespace())

    def _read(self, api, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            deployment = api.read_namespaced_deployment(deployment_name(name), self._namespace())
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return api.api_client.sanitize_for_serialization(deployment)

    def _stamp(self, api, name: str, version: str | None) -> None:
        """Set (or, with ``None``, remove) the version on the pod template: a new template, a rolling update."""
        patch = {"spec": {"template": {"metadata": {"annotations": {VERSION_ANNOTATION: version}}}}}
        api.patch_namespaced_deployment(
            deployment_name(name), self._namespace(), patch, _content_type=STRATEGIC_MERGE_PATCH
        )

    def _wait_for_rollout(self, api, name: str) -> None:
        deadline = time.monotonic() + self.rollout_timeout_s
        while True:
            deployment = self._read(api, name)
            if deployment is None:
                raise MlopsError(f"Deployment {deployment_name(name)} was deleted during its rollout")
            waiting = rollout_progress(deployment)
            if waiting is None:
                return
            if time.monotonic() > deadline:
                raise MlopsError(f"not complete after {self.rollout_timeout_s:g} s: waiting for {waiting}")
            time.sleep(self.poll_interval)
