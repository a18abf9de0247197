"""The Kubernetes manifests of deploy/k8s, rendered by ``kubectl kustomize`` (offline, well under a second per
folder) and checked against the Kubernetes 1.33 schemas (kubernetes-validate, strict), then on what matters: probes,
rollout, where the secrets come from, what the HPA, PDB and NetworkPolicy point at, and what each overlay changes.
The Dagster Helm values are checked for shape only: the chart's values.schema.json is not vendored here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
K8S = REPO / "deploy" / "k8s"
FOLDERS = ("base", "overlays/dev", "overlays/gpu")
KUBERNETES_VERSION = "1.33.0"  # as tests/unit/model/test_k8s_pod.py
PORT = 8080
SECRET_NAMES = ("TOKEN", "SECRET", "PASSWORD", "ACCESS_KEY")  # an env var with a literal value named so is a leak


def render(folder: str) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with kustomize v5) is not installed: the manifests cannot be rendered")
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S / folder)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind(objects: list[dict]) -> dict[str, dict]:
    kinds = [o["kind"] for o in objects]
    assert len(kinds) == len(set(kinds)), kinds
    return {o["kind"]: o for o in objects}


@pytest.fixture(scope="module", params=FOLDERS)
def rendered(request) -> tuple[str, dict[str, dict]]:
    return request.param, by_kind(render(request.param))


def literal_env(node) -> list[str]:
    """Names of every env var with a literal ``value`` anywhere in ``node``."""
    if isinstance(node, list):
        return [name for item in node for name in literal_env(item)]
    if not isinstance(node, dict):
        return []
    own = [node["name"]] if {"name", "value"} <= node.keys() and isinstance(node["name"], str) else []
    return own + [name for value in node.values() for name in literal_env(value)]


def container(objects: dict[str, dict]) -> dict:
    (only,) = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    return only


def test_every_rendered_object_is_valid_against_the_kubernetes_schema(rendered):
    folder, objects = rendered
    for obj in objects.values():
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"} <= set(
        objects
    ), folder


def test_the_endpoint_serves_the_spec_on_8080_with_probes_on_ping(rendered):
    _, objects = rendered
    c = container(objects)
    assert c["command"][:2] == ["mlops-assets", "serve"]
    assert "--host=0.0.0.0" in c["args"] and f"--port={PORT}" in c["args"]
    assert "--tracking-uri=$(MLFLOW_TRACKING_URI)" in c["args"]
    assert c["ports"] == [{"name": "http", "containerPort": PORT}]
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/ping", "port": "http"}
    assert c["livenessProbe"]["periodSeconds"] > c["readinessProbe"]["periodSeconds"]
    assert c["resources"]["requests"] and c["resources"]["limits"]


def test_a_rollout_never_takes_a_serving_pod_away_first(rendered):
    _, objects = rendered
    strategy = objects["Deployment"]["spec"]["strategy"]
    assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}


def test_the_pod_runs_as_the_image_user_on_a_read_only_root_with_writable_logs(rendered):
    _, objects = rendered
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    c = container(objects)
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
    assert c["securityContext"]["readOnlyRootFilesystem"] and not c["securityContext"]["allowPrivilegeEscalation"]
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert {"/logs", "/tmp"} <= mounts
    assert "--log-dir=/logs/inference_log" in c["args"]


def test_secrets_are_referenced_by_name_and_no_value_is_in_the_output(rendered):
    folder, objects = rendered
    c = container(objects)
    (token,) = [e for e in c["env"] if e["name"] == "MLOPS_ADMIN_TOKEN"]
    assert token["valueFrom"]["secretKeyRef"] == {"name": "mlops-endpoint-admin", "key": "token"}
    assert "value" not in token
    assert {"configMapRef": {"name": "mlops-mlflow"}} in c["envFrom"]
    assert {"secretRef": {"name": "mlops-object-store"}} in c["envFrom"]
    assert "Secret" not in objects
    assert literal_env(list(objects.values())) == ["MLOPS_HOME"], folder
    assert not [n for n in literal_env(list(objects.values())) if any(w in n.upper() for w in SECRET_NAMES)]
    assert "password" not in yaml.safe_dump_all(objects.values()).lower()


def test_the_hpa_scales_the_deployment_on_cpu(rendered):
    _, objects = rendered
    hpa = objects["HorizontalPodAutoscaler"]["spec"]
    deployment = objects["Deployment"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    (metric,) = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert hpa["minReplicas"] <= deployment["spec"]["replicas"] <= hpa["maxReplicas"]


def test_the_pdb_service_and_network_policy_select_the_endpoint_pods(rendered):
    _, objects = rendered
    labels = objects["Deployment"]["spec"]["template"]["metadata"]["labels"]
    pdb = objects["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]
    policy = objects["NetworkPolicy"]["spec"]
    assert pdb.items() <= labels.items()
    assert objects["Service"]["spec"]["selector"].items() <= labels.items()
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert objects["Deployment"]["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_only_labelled_clients_reach_port_8080(rendered):
    _, objects = rendered
    policy = objects["NetworkPolicy"]["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": PORT}]
    for peer in rule["from"]:
        assert peer["podSelector"]["matchLabels"] == {"mlops-assets/endpoint-client": "true"}


def test_the_dev_overlay_runs_one_small_replica_without_gpu_rules():
    base, dev = by_kind(render("base")), by_kind(render("overlays/dev"))
    assert dev["Deployment"]["spec"]["replicas"] == 1 < base["Deployment"]["spec"]["replicas"]
    assert dev["HorizontalPodAutoscaler"]["spec"]["minReplicas"] == 1
    assert container(dev)["resources"]["requests"] == {"cpu": "100m", "memory": "512Mi"}
    assert "affinity" not in dev["Deployment"]["spec"]["template"]["spec"]
    assert {o["metadata"]["namespace"] for o in dev.values()} == {"mlops-dev"}


def test_the_gpu_overlay_keeps_the_endpoint_off_gpu_nodes_and_names_the_pool():
    base, gpu = by_kind(render("base")), by_kind(render("overlays/gpu"))
    affinity = gpu["Deployment"]["spec"]["template"]["spec"]["affinity"]
    (term,) = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert term["matchExpressions"] == [{"key": "nvidia.com/gpu.present", "operator": "DoesNotExist"}]
    assert container(gpu)["resources"] == container(base)["resources"]
    assert not any("nvidia.com/gpu" in r for r in container(gpu)["resources"]["limits"])
    pool = gpu["ConfigMap"]["data"]
    assert pool["node-selector-key"] == term["matchExpressions"][0]["key"]
    assert pool["gpu-resource"] == "nvidia.com/gpu"  # the default of a spec's model.resources.gpu_resource


def test_the_dagster_helm_values_name_the_code_location_the_k8s_run_launcher_and_secrets_only():
    values = yaml.safe_load((REPO / "deploy" / "helm" / "dagster-values.yaml").read_text())
    (location,) = values["dagster-user-deployments"]["deployments"]
    args = location["dagsterApiGrpcArgs"]
    assert args[args.index("--python-file") + 1] == "/app/definitions.py"  # WORKDIR /app in deploy/Dockerfile
    assert (REPO / "definitions.py").exists()
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["containerConfig"]["resources"]
    assert values["dagsterDaemon"]["enabled"] and values["dagsterDaemon"]["runRetries"]["enabled"]
    assert values["postgresql"]["enabled"] and not values["generatePostgresqlPasswordSecret"]
    assert "postgresqlPassword" not in values["postgresql"]
    assert {s["name"] for s in location["envSecrets"]} == {"mlops-object-store"}


def test_the_strict_schema_catches_a_misspelt_field_in_a_rendered_manifest():
    (deployment,) = [o for o in render("base") if o["kind"] == "Deployment"]
    deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailble"] = 0
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
