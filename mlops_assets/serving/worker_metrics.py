"""One endpoint's figures summed over its workers: ``/metrics`` and ``/admin/status`` as one process would show them.

Each worker publishes its telemetry snapshot (``Telemetry.snapshot``) and its status counters to the control
folder (worker_control.py); the worker that answers ``/metrics`` or ``/admin/status`` adds its own, taken at that
moment, to the others'. Counters and histogram buckets are summed (the buckets are the same for every worker),
so ``histogram_quantile`` over the sum is the endpoint's. The workers that died are summed too, from their last
published figures (``retired``): a restarted worker starts from zero, and the endpoint's counters never go back.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest

from mlops_assets.serving.telemetry import LATENCY_BUCKETS, Collector

LOG_COUNTS = ("rows_written", "pending_rows", "dead_lettered_rows", "dropped_rows", "files_shipped", "files_to_ship")


def _add(into: dict, key, n) -> None:
    into[key] = into.get(key, 0) + n


def merge_snapshots(snapshots: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Telemetry snapshots of several processes as one: every counter and histogram bucket summed, a rejection's
    example the last one seen, the logs' figures summed by log."""
    requests: dict = {}
    rows: dict = {}
    rejections: dict = {}
    incomplete: dict = {}
    logs: dict[str, dict[str, int]] = {}
    counts = [0] * (len(LATENCY_BUCKETS) + 1)
    latency_sum, invalid, rejected, instances = 0.0, 0, 0, []
    for snapshot in snapshots:
        instances.append(snapshot.get("instance"))
        for route, status, n in snapshot["requests"]:
            _add(requests, (route, status), n)
        for i, n in enumerate(snapshot["latency_counts"]):
            counts[i] += n
        latency_sum += snapshot["latency_sum"]
        for version, arm, n in snapshot["rows_scored"]:
            _add(rows, (version, arm), n)
        invalid += snapshot["invalid_rows"]
        rejected += snapshot.get("rejected_requests", 0)
        for column, rule, n, example in snapshot.get("rejections", ()):
            counted = rejections.setdefault((column, rule), [0, None])
            counted[0] += n
            counted[1] = example if example is not None else counted[1]
        for route, part, status, n in snapshot.get("incomplete_requests", ()):
            _add(incomplete, (route, part, status), n)
        for name, figures in snapshot.get("logs", {}).items():
            for key, n in figures.items():
                _add(logs.setdefault(name, {}), key, n)
    return {
        "instances": instances,
        "requests": [[route, status, n] for (route, status), n in requests.items()],
        "latency_buckets": [*LATENCY_BUCKETS, "+Inf"],
        "latency_counts": counts,
        "latency_sum": latency_sum,
        "rows_scored": [[version, arm, n] for (version, arm), n in rows.items()],
        "invalid_rows": invalid,
        "rejected_requests": rejected,
        "rejections": [[column, rule, n, example] for (column, rule), (n, example) in rejections.items()],
        "incomplete_requests": [[route, part, status, n] for (route, part, status), n in incomplete.items()],
        "logs": logs,
    }


class SnapshotView:
    """A merged snapshot with ``Telemetry``'s attributes, for ``telemetry.Collector``."""

    def __init__(self, snapshot: dict[str, Any], served: dict[str, Any]):
        self.requests = {(route, status): n for route, status, n in snapshot["requests"]}
        self.bucket_counts = list(snapshot["latency_counts"])
        self.latency_sum = snapshot["latency_sum"]
        self.rows_scored = {(version, arm): n for version, arm, n in snapshot["rows_scored"]}
        self.rejections = {(column, rule): [n, example] for column, rule, n, example in snapshot["rejections"]}
        self.incomplete_requests = {(r, part, status): n for r, part, status, n in snapshot["incomplete_requests"]}
        self._sources = {"invalid_rows": snapshot["invalid_rows"], "served": served, "logs": snapshot["logs"]}

    def sources(self) -> dict[str, Any]:
        return self._sources


class _Workers:
    """``mlops_worker_info``: one series per live worker, ``answering`` the one that made this exposition."""

    def __init__(self, workers: list[dict[str, Any]]):
        self.workers = workers

    def collect(self):
        info = GaugeMetricFamily(
            "mlops_worker_info",
            "The endpoint's worker processes (always 1): index, pid, the version it serves, and which one answered",
            labels=["worker", "pid", "model_version", "answering"],
        )
        for worker in self.workers:
            labels = [str(worker["worker"]), str(worker["pid"]), str(worker.get("model_version") or "")]
            info.add_metric([*labels, "true" if worker["pid"] == os.getpid() else "false"], 1)
        yield info
        yield GaugeMetricFamily("mlops_workers", "Worker processes publishing figures", len(self.workers))


def exposition(snapshot: dict[str, Any], served: dict[str, Any], workers: list[dict[str, Any]]) -> bytes:
    """The Prometheus text of a merged ``snapshot``, with the answering process's own ``process_*`` figures."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector(SnapshotView(snapshot, served)))
    registry.register(_Workers(workers))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return generate_latest(registry)


def merge_arms(documents: Iterable[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    """Per-arm counters (``ArmStats`` as dicts) summed over workers."""
    out: dict[str, dict[str, int]] = {}
    for arms in documents:
        for arm, stats in arms.items():
            into = out.setdefault(arm, {})
            for key, n in stats.items():
                if isinstance(n, int | float) and not isinstance(n, bool):
                    _add(into, key, n)
    return out


def merge_requests(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """``RequestCounts`` documents summed: counts added, ignored columns added by name, the newest rejection
    message of the first worker that has one."""
    out: dict[str, Any] = {"accepted": 0, "rejected": 0, "last_rejection": "", "invalid_rows": 0, "ignored_columns": {}}
    for document in documents:
        for key in ("accepted", "rejected", "invalid_rows"):
            out[key] += document.get(key, 0)
        out["last_rejection"] = out["last_rejection"] or document.get("last_rejection", "")
        for name, n in document.get("ignored_columns", {}).items():
            _add(out["ignored_columns"], name, n)
    return out


def merge_log_status(documents: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """The logs' ``status()`` summed over workers; each worker's own beside it under ``workers``."""
    present = [d for d in documents if d is not None]
    if not present:
        return None
    out: dict[str, Any] = {**present[0]}
    for key in LOG_COUNTS:
        if any(key in d for d in present):
            out[key] = sum(d.get(key, 0) for d in present)
    out["last_error"] = next((d["last_error"] for d in present if d.get("last_error")), "")
    out["dead_letter"] = [d["dead_letter"] for d in present if d.get("dead_letter")] or None
    out["workers"] = present
    return out
