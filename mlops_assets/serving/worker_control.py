"""The control folder shared by one endpoint's worker processes: what they must serve, and what each reports.

The folder (mode 0700, beside the endpoint's state file) is made afresh by the supervisor at each start:

- ``desired.json``: ``{"generation", "phase", "target", "committed"}``. ``target`` is what to serve: the champion's
  version and the rollout (``Rollout`` as JSON, or ``null``). A change goes through ``prepare`` (every worker
  loads and warms the target's models, serving on), then ``commit`` (each swaps them in) or ``abort`` (each drops
  them). ``committed`` is the last committed ``{"generation", "target"}``: what a (re)starting worker serves.
- ``ack-<worker>.json``: ``{"pid", "generation", "phase"}`` a worker writes once it has prepared, applied, aborted
  or failed a generation (``error`` then), and once it is serving after a start.
- ``figures-<worker>.json``: each worker's telemetry snapshot and status counters (worker_metrics.py), written
  every ``publish_every_s`` and as soon as ``refresh`` changes (a ``/metrics`` or ``/admin/status`` read that wants
  every worker's figures as of now).
- ``retired.json``: the figures of the workers that died, summed by the supervisor (counters never go back).
- ``admin.lock``: one change at a time, whichever worker an admin request reached (``flock``).

Every file is replaced whole (written aside, then renamed), so a reader never sees half of one.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import time
from pathlib import Path
from typing import Any

import orjson

from mlops_assets.serving.worker_metrics import merge_snapshots

PREPARE, COMMIT, ABORT = "prepare", "commit", "abort"  # the phases of a change, in desired.json
PREPARED, APPLIED, ABORTED, FAILED = "prepared", "applied", "aborted", "failed"  # a worker's acknowledgements


class ControlFolder:
    """The files of ``path`` for an endpoint of ``workers`` processes (indices ``0 .. workers - 1``)."""

    def __init__(self, path: str | Path, workers: int):
        self.path = Path(path)
        self.workers = workers

    @classmethod
    def create(cls, path: str | Path, workers: int) -> ControlFolder:
        """An empty folder at ``path``: what a previous run of the endpoint left there is removed (a supervisor that
        was killed leaves its files; the endpoint starts again from the registry's champion)."""
        path = Path(path)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(mode=0o700, parents=True)
        return cls(path, workers)

    # desired.json
    def desired(self) -> dict[str, Any]:
        return self._read(self.path / "desired.json") or {}

    def write_desired(self, document: dict[str, Any]) -> None:
        self._write(self.path / "desired.json", document)

    # ack-<worker>.json
    def ack(self, worker: int) -> dict[str, Any]:
        return self._read(self.path / f"ack-{worker}.json") or {}

    def write_ack(self, worker: int, generation: int, phase: str, **extra: Any) -> None:
        document = {"pid": os.getpid(), "generation": generation, "phase": phase, "time": time.time(), **extra}
        self._write(self.path / f"ack-{worker}.json", document)

    # figures-<worker>.json, refresh, retired.json
    def figures(self, worker: int) -> dict[str, Any] | None:
        return self._read(self.path / f"figures-{worker}.json")

    def publish(self, worker: int, document: dict[str, Any]) -> None:
        self._write(self.path / f"figures-{worker}.json", document)

    def refresh_token(self) -> int:
        return (self._read(self.path / "refresh") or {}).get("token", 0)

    def ask_refresh(self) -> int:
        token = time.time_ns()
        self._write(self.path / "refresh", {"token": token})
        return token

    def retired(self) -> dict[str, Any] | None:
        return self._read(self.path / "retired.json")

    def retire(self, worker: int) -> None:
        """Add the last figures of a worker that exited to ``retired.json`` and remove its own: its replacement
        counts from zero. Its queues are gone with it (gauges set to 0); what it wrote stays counted."""
        figures = self.figures(worker)
        (self.path / f"figures-{worker}.json").unlink(missing_ok=True)
        if figures is None:
            return
        snapshot = figures["snapshot"]
        for log in snapshot.get("logs", {}).values():
            log.update({key: 0 for key in ("pending_rows", "files_to_ship") if key in log})
        retired = self.retired()
        self._write(self.path / "retired.json", merge_snapshots([retired, snapshot] if retired else [snapshot]))

    @contextlib.asynccontextmanager
    async def locked(self):
        """Hold ``admin.lock`` (waited for off the event loop): one change at a time across the workers."""
        descriptor = os.open(self.path / "admin.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await asyncio.to_thread(fcntl.flock, descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # releases the lock

    def _write(self, path: Path, document: dict[str, Any]) -> None:
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(orjson.dumps(document))
        partial.replace(path)

    @staticmethod
    def _read(path: Path) -> dict[str, Any] | None:
        try:
            return orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return None


def desired_state(generation: int, phase: str, target: dict, committed: dict | None) -> dict[str, Any]:
    """desired.json: ``phase`` of the change ``generation`` to ``target``; ``committed``: what a starting worker
    serves (``committed_target``)."""
    return {"generation": generation, "phase": phase, "target": target, "committed": committed}


def committed_target(generation: int, target: dict) -> dict[str, Any]:
    return {"generation": generation, "target": target}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
