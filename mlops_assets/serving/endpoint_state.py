"""The state file of a local endpoint, shared by the endpoint, the deployer, the supervisor and the CLI.

``<state_dir>/<pipeline>.json``, readable only by its owner (mode 0600) because it may hold the admin token:

- ``url``: the endpoint's address. It outlives the process, so a restart listens where clients already send.
- ``spec``, ``log_dir``: what a restart serves and where it logs.
- ``pid``, and ``admin_token`` when the endpoint made its own: present while the endpoint is meant to run. A
  person's stop, or the endpoint's own clean exit, removes them; a crash leaves them, which is how the
  supervisor tells a crash from a stop.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
from pathlib import Path

# a busy endpoint still answers /ping and /version from its event loop, but a loaded machine can take seconds; an
# endpoint taken for gone would be started a second time beside the first
PING_TIMEOUT_S = 10.0
RUNNING_KEYS = ("pid", "admin_token")  # what a stop removes


def state_file(state_dir: str | Path, name: str) -> Path:
    return Path(state_dir) / f"{name}.json"


def read_state(state_dir: str | Path, name: str) -> dict:
    """The pipeline's state file, ``{}`` when there is none."""
    path = state_file(state_dir, name)
    return json.loads(path.read_text()) if path.exists() else {}


def write_state(path: str | Path, state: dict) -> None:
    """Replace the state file at once, created readable by its owner alone (it may hold a token)."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(state, handle)
    partial.replace(path)


def endpoint_port(asked: int | None, declared: int, state: dict) -> int:
    """Where an endpoint listens: the port asked for on the command line, else the spec's
    ``deployment.port``, else the port it had before (its state file), else any free port (0)."""
    if asked is not None:
        return asked
    if declared:
        return declared
    return int(state["url"].rsplit(":", 1)[1]) if "url" in state else 0


def admin_token(state_dir: str | Path, name: str) -> str | None:
    """The token the pipeline's endpoint wants on admin routes: the one it made (state file), else
    ``MLOPS_ADMIN_TOKEN``, which it was started with."""
    return read_state(state_dir, name).get("admin_token") or os.environ.get("MLOPS_ADMIN_TOKEN")


def _ping(url: str) -> bool | None:
    """``True``: answers; ``None``: nothing listens there (connection refused); ``False``: no answer in time."""
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=PING_TIMEOUT_S) as response:
            return response.status == 200
    except urllib.error.HTTPError:
        return False
    except urllib.error.URLError as exc:
        return None if isinstance(exc.reason, ConnectionRefusedError) else False
    except ConnectionRefusedError:
        return None
    except OSError:
        return False


def running_url(state_dir: str | Path, name: str) -> str | None:
    """URL of the pipeline's endpoint if it is meant to run and answers ``/ping``, else ``None``."""
    state = read_state(state_dir, name)
    if "pid" not in state:
        return None
    return state["url"] if _ping(state["url"]) else None


def crashed_url(state_dir: str | Path, name: str) -> str | None:
    """The address of an endpoint meant to run where nothing listens (a crash), else ``None``.

    An endpoint that is slow to answer is left alone: it may be busy, and its port is still taken.
    """
    state = read_state(state_dir, name)
    if "pid" not in state:
        return None
    return state["url"] if _ping(state["url"]) is None else None


def stop(state_dir: str | Path, name: str) -> bool:
    """Stop the pipeline's endpoint process, keeping its address; ``False`` if none was running."""
    state = read_state(state_dir, name)
    if "pid" not in state:
        return False
    write_state(state_file(state_dir, name), {k: v for k, v in state.items() if k not in RUNNING_KEYS})
    try:
        os.kill(state["pid"], signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def forget_process(path: str | Path, pid: int) -> None:
    """Mark the endpoint ``pid`` as stopped on purpose, unless another process has taken the file since."""
    path = Path(path)
    state = json.loads(path.read_text()) if path.exists() else {}
    if state.get("pid") == pid:
        write_state(path, {k: v for k, v in state.items() if k not in RUNNING_KEYS})
