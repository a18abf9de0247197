"""The endpoint as a local process: started once, then told to reload on every promotion; started again on
the same address after a crash."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import dagster as dg

from mlops_assets.contracts import EndpointDeployer
from mlops_assets.records import EndpointStatus, RegisteredModel, Rollout
from mlops_assets.serving.endpoint_state import (
    PING_TIMEOUT_S,
    admin_token,
    crashed_url,
    read_state,
    running_url,
    state_file,
)


def request_json(url: str, token: str | None, timeout: float = PING_TIMEOUT_S, data: bytes | None = None) -> dict:
    """GET (or, with ``data``, POST) an endpoint route with the admin token; its JSON answer."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"{}")


class LocalProcessDeployer(EndpointDeployer):
    """Runs ``mlops-assets serve`` in the background; its state file and log sit in ``state_dir``. The
    endpoint listens on the spec's ``deployment.host`` and ``deployment.port``, or, with no port declared, on
    the port it had the first time (kept in its state file)."""

    state_dir: str
    tracking_uri: str
    start_timeout_s: float = 120.0  # a cold start imports mlflow and sklearn, loads and checks the model

    def running_url(self, name: str) -> str | None:
        return running_url(self.state_dir, name)

    def deploy(self, spec_path: str, model: RegisteredModel, log_uri: str) -> str:
        url = self.running_url(model.name)
        if url is not None:
            try:
                request_json(
                    f"{url}/admin/reload",
                    admin_token(self.state_dir, model.name),
                    timeout=self.start_timeout_s,
                    data=b"{}",
                )
            except urllib.error.HTTPError as exc:
                raise dg.Failure(f"endpoint {url} refused the reload: {exc.read().decode()}") from exc
        else:
            url = self._start(spec_path, model.name, log_uri)
        token = admin_token(self.state_dir, model.name)
        serving = request_json(f"{url}/version", token)["model_version"]
        if serving != model.version:  # started meanwhile (by the supervisor) with the champion of before the move
            request_json(f"{url}/admin/reload", token, timeout=self.start_timeout_s, data=b"{}")
            serving = request_json(f"{url}/version", token)["model_version"]
        if serving != model.version:
            raise dg.Failure(f"endpoint {url} serves version {serving}, expected {model.version}")
        return url

    def crashed(self, name: str) -> str | None:
        return crashed_url(self.state_dir, name)

    def restart(self, name: str) -> str:
        state = read_state(self.state_dir, name)
        return self._start(state["spec"], name, state["log_dir"])

    def _admin(self, name: str, route: str, body: dict | None = None) -> dict:
        url = self.running_url(name)
        if url is None:
            raise dg.Failure(f"no endpoint is running for {name}")
        try:
            return request_json(
                f"{url}{route}",
                admin_token(self.state_dir, name),
                timeout=self.start_timeout_s,
                data=None if body is None else json.dumps(body).encode(),
            )
        except urllib.error.HTTPError as exc:
            raise dg.Failure(f"endpoint {url} refused {route}: {exc.read().decode()}") from exc

    def start_rollout(self, name: str, rollout: Rollout) -> EndpointStatus:
        return EndpointStatus.from_json(self._admin(name, "/admin/rollout", asdict(rollout)))

    def rollout_status(self, name: str) -> EndpointStatus:
        return EndpointStatus.from_json(self._admin(name, "/admin/status"))

    def end_rollout(self, name: str) -> EndpointStatus:
        return EndpointStatus.from_json(self._admin(name, "/admin/rollout/end", {}))

    @contextmanager
    def _starting(self, name: str):
        """One start at a time per endpoint, across processes (a deployment and the supervisor)."""
        lock = Path(self.state_dir) / f"{name}.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        with open(lock, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _start(self, spec_path: str, name: str, log_uri: str) -> str:
        state = state_file(self.state_dir, name)
        with self._starting(name):
            url = self.running_url(name)
            if url is not None:  # started meanwhile by another process
                return url
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
                "--state-file",
                str(state),
            ]
            log = state.with_suffix(".log")
            with open(log, "ab") as output:
                process = subprocess.Popen(command, stdout=output, stderr=output, start_new_session=True)
            deadline = time.monotonic() + self.start_timeout_s
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    said = log.read_text(errors="replace").strip().splitlines()[-1:] or ["nothing"]
                    raise dg.Failure(f"the endpoint exited with code {process.returncode}: {said[0]} (log: {log})")
                if read_state(self.state_dir, name).get("pid") == process.pid:
                    url = self.running_url(name)
                    if url is not None:
                        return url
                time.sleep(0.2)
            process.terminate()
            raise dg.Failure(f"the endpoint did not answer within {self.start_timeout_s} s (log: {log})")
