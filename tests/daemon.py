"""``dagster-daemon run`` as users start it, for the tests and the loop bench (bench/loop.py): the instance's
``dagster.yaml`` written by the Makefile's own rule, a workspace that loads the repository's definitions.py, and
the daemon in a process group of its own (its code server and run workers go with it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def write_instance_config(dagster_home: Path) -> None:
    """``dagster_home``'s ``dagster.yaml``, written by the Makefile's ``$(DAGSTER_HOME)/dagster.yaml`` rule (the one
    ``make ui`` uses): telemetry off, the run queue and the limits the framework adds. ``-o install``: nothing is
    installed."""
    subprocess.run(
        [
            "make",
            "-s",
            "-o",
            "install",
            "-C",
            str(REPO),
            f"DAGSTER_HOME={dagster_home}",
            str(dagster_home / "dagster.yaml"),
        ],
        check=True,
        capture_output=True,
    )


def write_workspace(folder: Path) -> Path:
    """A workspace that loads the repository's definitions.py (the specs come from ``MLOPS_PIPELINES``)."""
    path = folder / "workspace.yaml"
    path.write_text(
        "load_from:\n  - python_file:\n"
        f"      relative_path: {REPO / 'definitions.py'}\n      working_directory: {REPO}\n"
    )
    return path


class Daemon:
    """``dagster-daemon run`` in a process group of its own, its output in ``log``."""

    def __init__(self, workspace: Path, env: dict[str, str], log: Path):
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
