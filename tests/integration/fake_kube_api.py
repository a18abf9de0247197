"""A Kubernetes API server at the HTTP boundary only, for ``PipesK8sClient.run`` and the endpoint's Deployment:
what they call, nothing more.

It validates each created pod against the Kubernetes OpenAPI schema (strict, as the API server rejects unknown
fields) and stands in for the kubelet by running the pod's first container's command as a local process, with the
container's env and its ``envFrom`` Secrets (from ``secrets``) and ``PATH`` pointing at this interpreter, so that
the image's ``python`` is this one. The pod reads Running, then Succeeded or Failed with the exit code; its output is
served as the pod's log, timestamped as the kubelet does. No scheduler, image, node, GPU or restart is involved.

A Deployment (``deployments``) is read and patched as the API server does it: a strategic merge patch of its pod
template is applied, the result validated against the schema, and a new template starts a rollout, which the
test's ``roll`` callback carries out in place of the controller and the kubelet (it starts the new version and says
whether it became ready; until then the old replicas stay, as ``maxUnavailable: 0`` keeps them).
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.33.0"
PODS = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods(?:/(?P<name>[^/]+)(?P<log>/log)?)?$")
DEPLOYMENTS = re.compile(r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/deployments/(?P<name>[^/]+)$")
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


def kube_timestamp(ns: int) -> str:
    seconds, nanos = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


@dataclass
class FakePod:
    namespace: str
    body: dict
    process: subprocess.Popen
    started: str
    finished: str | None = None
    lines: list[str] = field(default_factory=list)  # "<timestamp> <line>", as `kubectl logs --timestamps`
    changed: threading.Condition = field(default_factory=threading.Condition)
    done: bool = False

    @property
    def name(self) -> str:
        return self.body["metadata"]["name"]

    def as_json(self) -> dict:
        container = self.body["spec"]["containers"][0]
        if self.done:
            code = self.process.returncode
            state = {
                "terminated": {
                    "exitCode": code,
                    "reason": "Completed" if code == 0 else "Error",
                    "startedAt": self.started,
                    "finishedAt": self.finished,
                }
            }
            phase = "Succeeded" if code == 0 else "Failed"
        else:
            state, phase = {"running": {"startedAt": self.started}}, "Running"
        status = {
            "name": container["name"],
            "image": container["image"],
            "imageID": "",
            "ready": not self.done,
            "restartCount": 0,
            "state": state,
        }
        return {**self.body, "status": {"phase": phase, "containerStatuses": [status]}}


class FakeKubeApi:
    """``with FakeKubeApi(secrets) as api``: serves on 127.0.0.1; ``api.kubeconfig(path)`` points a client at it."""

    def __init__(
        self,
        secrets: dict[str, dict[str, str]] | None = None,
        workdir: Path | None = None,
        deployments: list[dict] | None = None,
        roll: Callable[[dict], bool] | None = None,
    ):
        self.secrets = secrets or {}
        self.workdir = workdir
        self.deployments = {
            (d["metadata"].get("namespace", "default"), d["metadata"]["name"]): with_status(d)
            for d in deployments or []
        }
        self.roll = roll
        self.patches: list[tuple[str, str, dict]] = []  # (content type, deployment, patch) as received
        self.pods: dict[tuple[str, str], FakePod] = {}
        self.created: list[dict] = []  # every pod body accepted, as received
        self.deleted: list[str] = []
        self.logs: dict[str, list[str]] = {}  # each deleted pod's log, kept for the test to read
        self.requests: list[str] = []  # "METHOD path", as answered
        self.rejected: list[str] = []  # schema errors of refused pods
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def kubeconfig(self, path: Path) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "fake-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tester", "namespace": "default"}}],
            "current-context": "fake",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def __enter__(self) -> FakeKubeApi:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        for pod in self.pods.values():
            if pod.process.poll() is None:
                pod.process.kill()
                pod.process.wait()

    def create(self, namespace: str, body: dict) -> tuple[int, dict]:
        body = {"apiVersion": "v1", "kind": "Pod", **body}  # the client may leave them to the URL, as here
        try:
            kubernetes_validate.validate(body, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            self.rejected.append(str(error))
            return 422, status_body(422, "Invalid", str(error))
        self.created.append(body)
        container = body["spec"]["containers"][0]
        env = {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin{os.pathsep}/bin",
            "HOME": os.environ.get("HOME", "/tmp"),
        }
        for source in container.get("envFrom", []):
            env.update(self.secrets[source["secretRef"]["name"]])
        env.update({e["name"]: e["value"] for e in container.get("env", [])})
        process = subprocess.Popen(
            container["command"],
            env=env,
            cwd=self.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        pod = FakePod(namespace, body, process, kube_timestamp(time.time_ns()))
        self.pods[(namespace, pod.name)] = pod
        threading.Thread(target=self._collect, args=(pod,), daemon=True).start()
        return 201, pod.as_json()

    def patch(self, namespace: str, name: str, content_type: str, patch: dict) -> tuple[int, dict]:
        deployment = self.deployments.get((namespace, name))
        if deployment is None:
            return 404, status_body(404, "NotFound", f'deployments.apps "{name}" not found')
        if content_type != STRATEGIC_MERGE_PATCH:  # a map merged as JSON patch would be refused, or replace the map
            return 415, status_body(415, "UnsupportedMediaType", f"this fake merges {STRATEGIC_MERGE_PATCH} only")
        self.patches.append((content_type, name, patch))
        patched = merge(copy.deepcopy(deployment), patch)
        try:
            body = {k: v for k, v in patched.items() if k != "status"}
            kubernetes_validate.validate(body, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            self.rejected.append(str(error))
            return 422, status_body(422, "Invalid", str(error))
        if patched["spec"]["template"] != deployment["spec"]["template"]:
            patched["metadata"]["generation"] += 1
            replicas = patched["spec"].get("replicas", 1)
            patched["status"].update(observedGeneration=patched["metadata"]["generation"], updatedReplicas=0)
            patched["status"]["replicas"] = deployment["status"]["replicas"] + 1  # maxSurge: one new pod at a time
            threading.Thread(target=self._roll, args=(patched, replicas), daemon=True).start()
        self.deployments[(namespace, name)] = patched
        return 200, patched

    def _roll(self, deployment: dict, replicas: int) -> None:
        """The controller and the kubelet: the new template's pods become ready, or never do."""
        if self.roll is not None and self.roll(deployment["spec"]["template"]):
            deployment["status"].update(replicas=replicas, updatedReplicas=replicas, availableReplicas=replicas)

    def _collect(self, pod: FakePod) -> None:
        last = 0
        for raw in pod.process.stdout:
            last = max(time.time_ns(), last + 1)  # distinct and increasing, as the kubelet's nanoseconds are
            with pod.changed:
                pod.lines.append(f"{kube_timestamp(last)} {raw.decode(errors='replace').rstrip(chr(10))}")
                pod.changed.notify_all()
        pod.process.wait()
        with pod.changed:
            pod.finished, pod.done = kube_timestamp(time.time_ns()), True
            pod.changed.notify_all()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args) -> None:  # quiet: the test asserts on what the fake recorded
                api.requests.append(f"{self.command} {self.path}")

            def send_json(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def route(self) -> tuple[re.Match | None, dict[str, list[str]]]:
                url = urlparse(self.path)
                return PODS.match(url.path), parse_qs(url.query)

            def do_PATCH(self) -> None:
                match = DEPLOYMENTS.match(urlparse(self.path).path)
                if not match:
                    return self.send_json(404, status_body(404, "NotFound", self.path))
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_json(*api.patch(match["ns"], match["name"], self.headers["Content-Type"], body))

            def do_POST(self) -> None:
                match, _ = self.route()
                if not match or match["name"]:
                    return self.send_json(404, status_body(404, "NotFound", self.path))
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_json(*api.create(match["ns"], body))

            def do_GET(self) -> None:
                deployment = DEPLOYMENTS.match(urlparse(self.path).path)
                if deployment:
                    found = api.deployments.get((deployment["ns"], deployment["name"]))
                    if found is None:
                        return self.send_json(404, status_body(404, "NotFound", self.path))
                    return self.send_json(200, found)
                match, query = self.route()
                if not match:
                    return self.send_json(404, status_body(404, "NotFound", self.path))
                if not match["name"]:
                    wanted = query.get("fieldSelector", [""])[0].removeprefix("metadata.name=")
                    items = [p.as_json() for (ns, n), p in api.pods.items() if ns == match["ns"] and n == wanted]
                    return self.send_json(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
                pod = api.pods.get((match["ns"], match["name"]))
                if pod is None:
                    return self.send_json(404, status_body(404, "NotFound", f'pods "{match["name"]}" not found'))
                if not match["log"]:
                    return self.send_json(200, pod.as_json())
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                follow = query.get("follow", ["false"])[0].lower() == "true"  # the Python client sends "True"
                sent = 0
                while True:
                    with pod.changed:
                        while follow and sent == len(pod.lines) and not pod.done:
                            pod.changed.wait(1)
                        lines, finished = pod.lines[sent:], pod.done
                    sent += len(lines)
                    if lines:
                        self.wfile.write("".join(line + "\n" for line in lines).encode())
                        self.wfile.flush()
                    if not follow or (finished and sent == len(pod.lines)):
                        return

            def do_DELETE(self) -> None:
                match, _ = self.route()
                pod = api.pods.pop((match["ns"], match["name"]), None) if match and match["name"] else None
                if pod is None:
                    return self.send_json(404, status_body(404, "NotFound", self.path))
                if pod.process.poll() is None:
                    pod.process.kill()
                api.deleted.append(pod.name)
                api.logs[pod.name] = list(pod.lines)
                self.send_json(200, pod.as_json())

        return Handler


def with_status(deployment: dict) -> dict:
    """A Deployment as the API server holds it once its pods run the template: generation 1, all replicas
    updated; available only if the test says so (``status.availableReplicas``)."""
    deployment = copy.deepcopy(deployment)
    replicas = deployment["spec"].get("replicas", 1)
    deployment["metadata"].setdefault("generation", 1)
    status = {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas, "availableReplicas": 0}
    deployment["status"] = {**status, **deployment.get("status", {})}
    return deployment


def merge(target: dict, patch: dict) -> dict:
    """A strategic merge patch of maps (what the endpoint deployer sends): keys merge, ``null`` deletes."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            target[key] = merge(target[key] if isinstance(target.get(key), dict) else {}, value)
        else:
            target[key] = value
    return target


def status_body(code: int, reason: str, message: str) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }
