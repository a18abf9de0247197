"""The Kubernetes manifests of deploy/k8s, rendered by ``kubectl kustomize`` (offline, well under a second per
folder) and checked against the Kubernetes 1.33 schemas (kubernetes-validate, strict), then on what matters: the
production settings every process reads, the MLflow server, the trainer's RBAC and the endpoint (probes, rollout,
where the secrets come from, what the HPA, PDB and NetworkPolicies point at), and what each overlay changes.
The Helm values are checked here for what they share with the manifests; test_helm_values_schema.py validates them
against the chart's schema."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import kubernetes_validate
import pytest
import yaml

from mlops_assets.environment import KUBERNETES, STORE_URL, TRACKING_URI, TRAINER_NAMESPACE, Settings
from mlops_assets.model.k8s_pod import pod_meta
from mlops_assets.resources.k8s_endpoint import deployment_name
from mlops_assets.spec import load_spec

REPO = Path(__file__).resolve().parents[3]
K8S = REPO / "deploy" / "k8s"
HELM_VALUES = REPO / "deploy" / "helm" / "dagster-values.yaml"
KUBERNETES_DOC = REPO / "docs" / "kubernetes.md"
NAMESPACES = {"base": "mlops", "overlays/dev": "mlops-dev", "overlays/gpu": "mlops"}  # base: as the settings say
KUBERNETES_VERSION = "1.33.0"  # as tests/unit/model/test_k8s_pod.py
ENDPOINT, MLFLOW, SETTINGS, TRAINER = "mlops-endpoint-breast-cancer", "mlflow", "mlops-settings", "mlops-trainer"
PORT, MLFLOW_PORT = 8080, 5000
MLFLOW_CLIENT = {"mlops-assets/mlflow-client": "true"}
SECRET_NAMES = ("TOKEN", "SECRET", "PASSWORD", "ACCESS_KEY", "BACKEND_STORE")  # literal values named so would leak


def render(folder: str) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with kustomize v5) is not installed: the manifests cannot be rendered")
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S / folder)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind_and_name(objects: list[dict]) -> dict[tuple[str, str], dict]:
    keys = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(keys) == len(set(keys)), keys
    return dict(zip(keys, objects, strict=True))


@pytest.fixture(scope="module", params=list(NAMESPACES))
def rendered(request) -> tuple[str, dict[tuple[str, str], dict]]:
    return request.param, by_kind_and_name(render(request.param))


def helm_values() -> dict:
    return yaml.safe_load(HELM_VALUES.read_text())


def literal_env(node) -> list[str]:
    """Names of every env var with a literal ``value`` anywhere in ``node``."""
    if isinstance(node, list):
        return [name for item in node for name in literal_env(item)]
    if not isinstance(node, dict):
        return []
    own = [node["name"]] if {"name", "value"} <= node.keys() and isinstance(node["name"], str) else []
    return own + [name for value in node.values() for name in literal_env(value)]


def referenced(node, kind: str) -> set[str]:
    """Names of the Secrets (``kind="secret"``) or ConfigMaps (``"configMap"``) ``node`` reads anywhere."""
    if isinstance(node, list):
        return {name for item in node for name in referenced(item, kind)}
    if not isinstance(node, dict):
        return set()
    own = {node[key]["name"] for key in (f"{kind}Ref", f"{kind}KeyRef") if key in node}
    return own | {name for value in node.values() for name in referenced(value, kind)}


def pod(objects: dict, name: str) -> dict:
    return objects[("Deployment", name)]["spec"]["template"]["spec"]


def container(objects: dict, name: str) -> dict:
    (only,) = pod(objects, name)["containers"]
    return only


def admits(policy: dict, labels: dict[str, str], port: int) -> bool:
    """Whether a NetworkPolicy lets a pod with ``labels`` in the same namespace reach ``port``."""
    return any(
        any(p["port"] == port for p in rule["ports"])
        and any(
            "namespaceSelector" not in peer and peer["podSelector"]["matchLabels"].items() <= labels.items()
            for peer in rule["from"]
        )
        for rule in policy["spec"]["ingress"]
    )


def test_every_rendered_object_is_valid_against_the_kubernetes_schema(rendered):
    folder, objects = rendered
    for obj in objects.values():
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    kinds = {kind for kind, _ in objects}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"} <= kinds
    assert {"ConfigMap", "Role", "RoleBinding"} <= kinds, folder


def test_the_settings_are_production_and_the_framework_accepts_them(rendered):
    folder, objects = rendered
    data = objects[("ConfigMap", SETTINGS)]["data"]
    settings = Settings.from_env(data)
    assert settings.production and settings.trainer == KUBERNETES
    assert settings.store_url.startswith("s3://") and data["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")
    tracking = urlparse(data[TRACKING_URI])
    assert (tracking.hostname, tracking.port) == (f"{MLFLOW}.{NAMESPACES[folder]}", MLFLOW_PORT)
    assert objects[("Service", MLFLOW)]["spec"]["ports"][0]["port"] == MLFLOW_PORT
    assert data[TRAINER_NAMESPACE] == NAMESPACES[folder]
    assert settings.trainer_env_secrets == ("mlops-object-store",)
    # credentials stay in the Secrets: none by name, none inside a URL (user:password@host)
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_BACKEND_STORE_URI"} & data.keys()
    assert not [value for value in data.values() if "@" in value]


def test_the_mlflow_server_keeps_runs_in_postgres_and_serves_artifacts_from_the_object_store(rendered):
    _, objects = rendered
    c = container(objects, MLFLOW)
    command = c["command"] + c["args"]
    assert command[:2] == ["mlflow", "server"]
    option = {command[i]: command[i + 1] for i in range(2, len(command) - 1) if command[i].startswith("--")}
    assert option["--host"] == "0.0.0.0" and option["--port"] == str(MLFLOW_PORT)
    assert option["--backend-store-uri"] == "$(MLFLOW_BACKEND_STORE_URI)"
    assert option["--artifacts-destination"] == "$(MLFLOW_ARTIFACTS_DESTINATION)"
    assert "--serve-artifacts" in command and "--no-serve-artifacts" not in command
    env = {e["name"]: e for e in c["env"]}
    backend = env["MLFLOW_BACKEND_STORE_URI"]
    assert backend["valueFrom"]["secretKeyRef"] == {"name": "mlops-mlflow-backend", "key": "uri"}
    assert env["MLFLOW_ARTIFACTS_DESTINATION"]["valueFrom"]["configMapKeyRef"]["name"] == SETTINGS
    assert c["envFrom"] == [{"secretRef": {"name": "mlops-object-store"}}]
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert c["resources"]["requests"] and c["resources"]["limits"]
    assert pod(objects, MLFLOW)["securityContext"]["runAsNonRoot"] and c["securityContext"]["readOnlyRootFilesystem"]


def test_mlflow_admits_the_host_names_its_clients_use(rendered):
    folder, objects = rendered
    env = {e["name"]: e for e in container(objects, MLFLOW)["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    value = env["MLFLOW_SERVER_ALLOWED_HOSTS"]["value"].replace("$(POD_NAMESPACE)", NAMESPACES[folder])
    allowed = [host.strip() for host in value.split(",")]  # as MLflow reads it
    assert urlparse(objects[("ConfigMap", SETTINGS)]["data"][TRACKING_URI]).netloc in allowed


def test_the_mlflow_service_selects_its_pods(rendered):
    _, objects = rendered
    labels = objects[("Deployment", MLFLOW)]["spec"]["template"]["metadata"]["labels"]
    service = objects[("Service", MLFLOW)]["spec"]
    assert service["selector"].items() <= labels.items()
    assert service["ports"] == [{"name": "http", "port": MLFLOW_PORT, "targetPort": "http"}]
    assert objects[("NetworkPolicy", MLFLOW)]["spec"]["podSelector"]["matchLabels"].items() <= labels.items()


def test_mlflow_admits_the_endpoint_the_code_location_its_runs_and_the_training_pods_only(rendered):
    _, objects = rendered
    policy = objects[("NetworkPolicy", MLFLOW)]
    values = helm_values()
    (location,) = values["dagster-user-deployments"]["deployments"]
    training_pod = pod_meta(load_spec(REPO / "pipelines" / "breast_cancer.yaml"), "a-run-id")["labels"]
    clients = {
        "endpoint": objects[("Deployment", ENDPOINT)]["spec"]["template"]["metadata"]["labels"],
        "code location": location["labels"],
        "run pods": values["runLauncher"]["config"]["k8sRunLauncher"]["labels"],
        "training pods": training_pod,
    }
    for client, labels in clients.items():
        assert admits(policy, labels, MLFLOW_PORT), client
    assert not admits(policy, {"app.kubernetes.io/name": "dagster-webserver"}, MLFLOW_PORT)
    assert not admits(policy, {**MLFLOW_CLIENT}, PORT)


def test_the_run_pods_service_account_may_run_training_pods(rendered):
    folder, objects = rendered
    rules = objects[("Role", TRAINER)]["rules"]
    granted = {(r, v) for rule in rules for r in rule["resources"] for v in rule["verbs"]}
    needed = {("pods", v) for v in ("create", "get", "list", "delete")} | {("pods/log", "get")}
    assert needed <= granted and all(rule["apiGroups"] == [""] for rule in rules)
    binding = objects[("RoleBinding", TRAINER)]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": TRAINER}
    (subject,) = binding["subjects"]
    account = helm_values()["global"]["serviceAccountName"]
    assert subject == {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACES[folder]}


def test_the_run_pods_service_account_may_roll_the_endpoint_deployment(rendered):
    """What KubernetesEndpointDeployer calls: read the Deployment, patch its pod template; the Deployment is the one
    it looks for, by the pipeline its endpoint serves."""
    folder, objects = rendered
    (rule,) = objects[("Role", "mlops-endpoint-deployer")]["rules"]
    assert rule == {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]}
    (subject,) = objects[("RoleBinding", "mlops-endpoint-deployer")]["subjects"]
    account = helm_values()["global"]["serviceAccountName"]
    assert subject == {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACES[folder]}
    spec = load_spec(REPO / container(objects, ENDPOINT)["command"][2])
    assert ("Deployment", deployment_name(spec.name)) in objects and ("Service", deployment_name(spec.name)) in objects


def test_the_endpoint_serves_the_spec_on_8080_with_probes_on_ping(rendered):
    _, objects = rendered
    c = container(objects, ENDPOINT)
    assert c["command"][:2] == ["mlops-assets", "serve"]
    assert "--host=0.0.0.0" in c["args"] and f"--port={PORT}" in c["args"]
    assert f"--tracking-uri=$({TRACKING_URI})" in c["args"]
    assert c["ports"] == [{"name": "http", "containerPort": PORT}]
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/ping", "port": "http"}
    assert c["livenessProbe"]["periodSeconds"] > c["readinessProbe"]["periodSeconds"]
    assert c["resources"]["requests"] and c["resources"]["limits"]


def test_the_endpoint_logs_to_the_object_store_through_a_spool_under_its_home(rendered):
    _, objects = rendered
    c = container(objects, ENDPOINT)
    assert f"--log-dir=$({STORE_URL})/breast_cancer/inference_log" in c["args"]
    assert {"configMapRef": {"name": SETTINGS}} in c["envFrom"]
    home = next(e["value"] for e in c["env"] if e["name"] == "MLOPS_HOME")
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert home in mounts and {"/tmp"} <= mounts.keys() and "/logs" not in mounts
    volumes = {v["name"]: v for v in pod(objects, ENDPOINT)["volumes"]}
    assert volumes[mounts[home]] == {"name": mounts[home], "emptyDir": {}}


def test_a_rollout_never_takes_a_serving_pod_away_first(rendered):
    _, objects = rendered
    for name in (ENDPOINT, MLFLOW):
        strategy = objects[("Deployment", name)]["spec"]["strategy"]
        assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}, name


def test_the_endpoint_pod_runs_as_the_image_user_on_a_read_only_root(rendered):
    _, objects = rendered
    spec = pod(objects, ENDPOINT)
    c = container(objects, ENDPOINT)
    assert spec["securityContext"]["runAsNonRoot"] and spec["securityContext"]["runAsUser"] == 10001
    assert c["securityContext"]["readOnlyRootFilesystem"] and not c["securityContext"]["allowPrivilegeEscalation"]


def test_secrets_are_referenced_by_name_and_no_value_is_in_the_output(rendered):
    folder, objects = rendered
    c = container(objects, ENDPOINT)
    (token,) = [e for e in c["env"] if e["name"] == "MLOPS_ADMIN_TOKEN"]
    assert token["valueFrom"]["secretKeyRef"] == {"name": "mlops-endpoint-admin", "key": "MLOPS_ADMIN_TOKEN"}
    assert {"secretRef": {"name": "mlops-object-store"}} in c["envFrom"]
    assert "Secret" not in {kind for kind, _ in objects}
    names = literal_env(list(objects.values()))
    assert sorted(names) == ["HOME", "MLFLOW_SERVER_ALLOWED_HOSTS", "MLOPS_HOME"], folder
    assert not [n for n in names if any(w in n.upper() for w in SECRET_NAMES)]
    assert "password" not in yaml.safe_dump_all(objects.values()).lower()


def test_the_hpa_scales_the_endpoint_on_cpu(rendered):
    _, objects = rendered
    hpa = objects[("HorizontalPodAutoscaler", ENDPOINT)]["spec"]
    deployment = objects[("Deployment", ENDPOINT)]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": ENDPOINT}
    (metric,) = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert hpa["minReplicas"] <= deployment["spec"]["replicas"] <= hpa["maxReplicas"]


def test_the_pdb_service_and_network_policy_select_the_endpoint_pods(rendered):
    _, objects = rendered
    labels = objects[("Deployment", ENDPOINT)]["spec"]["template"]["metadata"]["labels"]
    pdb = objects[("PodDisruptionBudget", ENDPOINT)]["spec"]["selector"]["matchLabels"]
    assert pdb.items() <= labels.items()
    assert objects[("Service", ENDPOINT)]["spec"]["selector"].items() <= labels.items()
    assert objects[("NetworkPolicy", ENDPOINT)]["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert objects[("Deployment", ENDPOINT)]["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_only_labelled_clients_reach_port_8080(rendered):
    _, objects = rendered
    policy = objects[("NetworkPolicy", ENDPOINT)]["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": PORT}]
    for peer in rule["from"]:
        assert peer["podSelector"]["matchLabels"] == {"mlops-assets/endpoint-client": "true"}


def test_the_dev_overlay_runs_small_replicas_without_gpu_rules_in_its_namespace():
    base, dev = by_kind_and_name(render("base")), by_kind_and_name(render("overlays/dev"))
    deployment = dev[("Deployment", ENDPOINT)]
    assert deployment["spec"]["replicas"] == 1 < base[("Deployment", ENDPOINT)]["spec"]["replicas"]
    assert dev[("HorizontalPodAutoscaler", ENDPOINT)]["spec"]["minReplicas"] == 1
    assert container(dev, ENDPOINT)["resources"]["requests"] == {"cpu": "100m", "memory": "512Mi"}
    assert container(dev, MLFLOW)["resources"]["requests"] == {"cpu": "100m", "memory": "256Mi"}
    assert not any("affinity" in pod(dev, name) for name in (ENDPOINT, MLFLOW))
    assert {o["metadata"]["namespace"] for o in dev.values()} == {"mlops-dev"}


def test_the_gpu_overlay_keeps_the_endpoint_and_mlflow_off_gpu_nodes_and_names_the_pool():
    base, gpu = by_kind_and_name(render("base")), by_kind_and_name(render("overlays/gpu"))
    for name in (ENDPOINT, MLFLOW):
        affinity = pod(gpu, name)["affinity"]
        (term,) = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert term["matchExpressions"] == [{"key": "nvidia.com/gpu.present", "operator": "DoesNotExist"}], name
        assert container(gpu, name)["resources"] == container(base, name)["resources"]
        assert not any("nvidia.com/gpu" in r for r in container(gpu, name)["resources"]["limits"])
    pool = gpu[("ConfigMap", "mlops-gpu-node-pool")]["data"]
    assert pool["node-selector-key"] == "nvidia.com/gpu.present"
    assert pool["gpu-resource"] == "nvidia.com/gpu"  # the default of a spec's model.resources.gpu_resource


def test_the_helm_values_give_the_code_location_and_its_runs_the_same_settings_and_secrets():
    values = helm_values()
    (location,) = values["dagster-user-deployments"]["deployments"]
    args = location["dagsterApiGrpcArgs"]
    assert args[args.index("--python-file") + 1] == "/app/definitions.py"  # WORKDIR /app in deploy/Dockerfile
    assert (REPO / "definitions.py").exists()
    assert location["includeConfigInLaunchedRuns"]["enabled"]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert launcher["runK8sConfig"]["containerConfig"]["resources"]
    # A promotion rolls the endpoint from a run pod (resources/k8s_endpoint.py) and reads its status: the admin
    # token, and the label the endpoint's NetworkPolicy admits.
    (endpoint_policy,) = [
        o for o in render("base") if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == ENDPOINT
    ]
    endpoint_client = endpoint_policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    for consumer in (location, launcher):
        assert consumer["envConfigMaps"] == [{"name": SETTINGS}]
        assert consumer["envSecrets"] == [{"name": "mlops-object-store"}, {"name": "mlops-endpoint-admin"}]
        assert consumer["labels"] == {**MLFLOW_CLIENT, **endpoint_client}
    assert values["rbacEnabled"] and values["serviceAccount"]["create"] and values["global"]["serviceAccountName"]
    assert values["dagsterDaemon"]["enabled"] and values["dagsterDaemon"]["runRetries"]["enabled"]
    assert values["postgresql"]["enabled"] and not values["generatePostgresqlPasswordSecret"]
    assert "postgresqlPassword" not in values["postgresql"]


def test_the_docs_create_every_secret_the_manifests_and_values_read():
    section = KUBERNETES_DOC.read_text().split("## Run on Kubernetes", 1)[1].split("\n## ", 1)[0]
    created = set(re.findall(r"create secret generic ([\w-]+)", section))
    objects = [o for folder in NAMESPACES for o in render(folder)]
    values = helm_values()
    needed = referenced(objects, "secret") | referenced(values, "secret") | {values["global"]["postgresqlSecretName"]}
    assert needed <= created, needed - created
    configmaps = referenced(objects, "configMap") | referenced(values, "configMap")
    assert configmaps == {SETTINGS}  # made by deploy/k8s, not by hand
    assert "create configmap" not in section


def test_the_strict_schema_catches_a_misspelt_field_in_a_rendered_manifest():
    deployment = by_kind_and_name(render("base"))[("Deployment", ENDPOINT)]
    deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailble"] = 0
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
