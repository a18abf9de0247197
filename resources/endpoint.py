"""The endpoint as a local process: started once, then told to reload on every promotion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict

import dagster as dg

from mlops_assets.contracts import EndpointDeployer, RegisteredModel
from mlops_assets.endpoint_state import PING_TIMEOUT_S, running_url, state_file
from mlops_assets.routing import Rollout


def _get_json(url: str, timeout: float = PING_TIMEOUT_S, data: bytes | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    token = os.environ.get("MLOPS_ADMIN_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"{}")


class LocalProcessDeployer(EndpointDeployer):
    """Runs ``mlops-assets serve`` in the background; its state file and log sit in ``state_dir``."""

    state_dir: str
    tracking_uri: str
    host: str = "127.0.0.1"
    port: int = 0
    start_timeout_s: float = 120.0  # a cold start imports mlflow and sklearn, loads and checks the model

    def running_url(self, name: str) -> str | None:
        return running_url(self.state_dir, name)

    def deploy(self, spec_path: str, model: RegisteredModel, log_uri: str) -> str:
        url = self.running_url(model.name)
        if url is not None:
            try:
                _get_json(f"{url}/admin/reload", timeout=self.start_timeout_s, data=b"{}")
            except urllib.error.HTTPError as exc:
                raise dg.Failure(f"endpoint {url} refused the reload: {exc.read().decode()}") from exc
        else:
            url = self._start(spec_path, model.name, log_uri)
        serving = _get_json(f"{url}/version")["model_version"]
        if serving != model.version:
            raise dg.Failure(f"endpoint {url} serves version {serving}, expected {model.version}")
        return url

    def _admin(self, name: str, route: str, body: dict | None = None) -> dict:
        url = self.running_url(name)
        if url is None:
            raise dg.Failure(f"no endpoint is running for {name}")
        try:
            return _get_json(
                f"{url}{route}", timeout=self.start_timeout_s, data=None if body is None else json.dumps(body).encode()
            )
        except urllib.error.HTTPError as exc:
            raise dg.Failure(f"endpoint {url} refused {route}: {exc.read().decode()}") from exc

    def start_rollout(self, name: str, rollout: Rollout) -> dict:
        return self._admin(name, "/admin/rollout", asdict(rollout))

    def rollout_status(self, name: str) -> dict:
        return self._admin(name, "/admin/status")

    def end_rollout(self, name: str) -> dict:
        return self._admin(name, "/admin/rollout/end", {})

    def _start(self, spec_path: str, name: str, log_uri: str) -> str:
        state = state_file(self.state_dir, name)
        state.parent.mkdir(parents=True, exist_ok=True)
        state.unlink(missing_ok=True)
        command = [
            sys.executable,
            "-m",
            "mlops_assets.cli",
            "serve",
            spec_path,
            "--tracking-uri",
            self.tracking_uri,
            "--log-dir",
            log_uri,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--state-file",
            str(state),
        ]
        with open(state.with_suffix(".log"), "ab") as output:
            process = subprocess.Popen(command, stdout=output, stderr=output, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise dg.Failure(f"the endpoint exited with code {process.returncode}; see {state.with_suffix('.log')}")
            url = self.running_url(name)
            if url is not None:
                return url
            time.sleep(0.2)
        process.terminate()
        raise dg.Failure(f"the endpoint did not answer within {self.start_timeout_s} s")
