"""The state file of a local endpoint, shared by the endpoint, the deployer, the supervisor and the CLI.

``<state_dir>/<pipeline>.json``, readable only by its owner (mode 0600) because it may hold the admin token:

- ``url``: the endpoint's address. It outlives the process, so a restart listens where clients already send.
- ``spec``, ``log_dir``: what a restart serves and where it logs.
- ``pid``, ``pid_started`` and ``admin_token`` when the endpoint made its own: present while the endpoint is
  meant to run. A person's stop, or the endpoint's own clean exit, removes them; a crash leaves them, which is
  how the supervisor tells a crash from a stop.

A crash leaves a pid that the system may give to another process: ``stop`` signals the process only while it
is still the one the file names, the same pid started at the same moment (``pid_started``, from
``/proc/<pid>/stat``, recorded by ``write_state``). Without ``/proc`` there is nothing to compare, and ``stop``
signals the pid as it is.
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
PID_STARTED = "pid_started"  # beside ``pid``: when that process started, in clock ticks since boot
RUNNING_KEYS = ("pid", PID_STARTED, "admin_token")  # what a stop removes


def state_file(state_dir: str | Path, name: str) -> Path:
    return Path(state_dir) / f"{name}.json"


def read_state(state_dir: str | Path, name: str) -> dict:
    """The pipeline's state file, ``{}`` when there is none."""
    path = state_file(state_dir, name)
    return json.loads(path.read_text()) if path.exists() else {}


def write_state(path: str | Path, state: dict) -> None:
    """Replace the state file at once, created readable by its owner alone (it may hold a token). A state that
    names a ``pid`` gets that process's start time beside it (``PID_STARTED``), unless it has one."""
    if "pid" in state and PID_STARTED not in state:
        state = {**state, PID_STARTED: process_started(state["pid"])}
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


def process_started(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (``/proc/<pid>/stat``, field 22); ``None`` when
    no such process runs, or there is no ``/proc`` to ask."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[19])  # after the command's name, which may hold spaces


def is_the_endpoint(state: dict) -> bool:
    """Whether the process ``state`` names still runs and is the one it was written for, not another process
    given the pid since a crash. A state written before start times were recorded: its command line must name
    the framework."""
    pid = state["pid"]
    if not Path("/proc/self/stat").exists():
        return True  # nothing to compare
    if state.get(PID_STARTED) is not None:
        return process_started(pid) == state[PID_STARTED]
    try:
        return b"mlops" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def stop(state_dir: str | Path, name: str) -> bool:
    """Stop the pipeline's endpoint process, keeping its address; ``False`` if none was running (a process that
    has taken the pid of a crashed endpoint since is left alone)."""
    state = read_state(state_dir, name)
    if "pid" not in state:
        return False
    write_state(state_file(state_dir, name), {k: v for k, v in state.items() if k not in RUNNING_KEYS})
    if not is_the_endpoint(state):
        return False
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
