"""The state file of a local endpoint process (``{pid, url}``), shared by the deployer and the CLI."""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from pathlib import Path

# a busy endpoint still answers /ping and /version from its event loop, but a loaded machine can take seconds; an
# endpoint taken for gone would be started a second time beside the first
PING_TIMEOUT_S = 10.0


def state_file(state_dir: str | Path, name: str) -> Path:
    return Path(state_dir) / f"{name}.json"


def running_url(state_dir: str | Path, name: str) -> str | None:
    """URL of the pipeline's endpoint if its state file exists and it answers ``/ping``, else ``None``."""
    path = state_file(state_dir, name)
    if not path.exists():
        return None
    url = json.loads(path.read_text())["url"]
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=PING_TIMEOUT_S) as response:
            return url if response.status == 200 else None
    except OSError:
        return None


def stop(state_dir: str | Path, name: str) -> bool:
    """Stop the pipeline's endpoint process; ``False`` if none was running."""
    path = state_file(state_dir, name)
    if not path.exists():
        return False
    pid = json.loads(path.read_text())["pid"]
    path.unlink()
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True
