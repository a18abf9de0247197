"""The endpoint's telemetry: ``GET /metrics`` in Prometheus' text format, and the same figures as snapshots.

The request path only adds to plain counters (``Telemetry.request``, ``Telemetry.scored``): every request
runs on the event loop's one thread, so no lock is needed, and a Prometheus client metric (a lock and a
label lookup per call) would cost more. The figures become Prometheus metrics when ``/metrics`` is read,
through a collector in a registry of the app's own (never the global one: two apps in one process stay
apart). The inference logs' counters, the served versions and the rollout are read at that moment too, and so
are the process's own figures (prometheus_client's ``process_*`` from ``/proc``: memory, CPU, open files, start
time, whose changes count restarts; ``python_info``), which deploy/monitoring's dashboard shows.

A snapshot (``Telemetry.snapshot``) is the same counters as one JSON document with the time; the endpoint
writes one every ``interval_s`` beside its inference log (``telemetry-<time>-<pid>.json``), which ships them to
the artifact store with the log's files (``-<replica>`` added to the name). ``stored_snapshots`` reads, through
the store, those a window needs, and ``summarise`` turns them into requests, error rate and latency quantiles,
so the pipeline sees them without a Prometheus server.

A request whose client never finished sending its head or its body (``Telemetry.incomplete``: answered 408 past
its deadline, or no answer when the client went away mid-body) is the client's doing, not the endpoint's: its
answer is counted with the others, and the request apart, by route and part (``head``, ``body``); it never
reaches the latency histogram, and ``summarise`` leaves it out of the scoring requests the SLOs judge. Scoring
latency runs from the moment the request's body is whole (``app.py``), so a client that sends it slowly does not
count as a slow endpoint either.

A rejected scoring request (400) is counted once per column and rule that rejected it (``Telemetry.rejected``,
on the rejection path only), at most ``MAX_REJECTION_CAUSES`` of them apart: the causes are named by the spec,
and a client cannot grow them past the bound with anything it sends. The ``schema_break`` check reads them.
"""

from __future__ import annotations

import bisect
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from mlops_assets.local.private import open_private
from mlops_assets.serving.inference_log import SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX

if TYPE_CHECKING:  # the endpoint never imports Dagster, which the contracts need
    from mlops_assets.contracts import ArtifactStore
    from mlops_assets.serving.worker_metrics import SnapshotView

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4.encode()  # "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
OTHER_ROUTE = "other"  # any path the app has no route for: one label, however many paths clients try
NO_ANSWER = "none"  # the status of a request whose client went away before it was answered
SCORING_ROUTE = "/invocations"  # the latency histogram and a window's summary are of scoring requests
MAX_REJECTION_CAUSES = 50  # (column, rule) pairs a rejection is counted under apart; the rest as OTHER_CAUSE
OTHER_CAUSE = ("(other)", "(other)")


class Telemetry:
    """Counters since the endpoint started, added to on the event loop's thread only.

    ``routes``: the paths counted under their own name; ``sources`` gives, when ``/metrics`` is read, the
    figures kept elsewhere (see ``collect``)."""

    def __init__(self, routes: Iterable[str], sources: Callable[[], dict[str, Any]]):
        self.routes = frozenset(routes)
        self.sources = sources
        self.started = time.time()
        self.segment: str | None = None  # a worker's name (``w0``...): in its snapshots' names, as in its log's
        self.requests: dict[tuple[str, str], int] = {}  # (route, status) -> requests answered
        self.bucket_counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one: over the largest bound
        self.latency_sum = 0.0
        self.rows_scored: dict[tuple[str, str], int] = {}  # (model version, arm) -> rows
        self.rejected_requests = 0  # scoring requests answered 400: a body the schema cannot take
        self.rejections: dict[tuple[str, str], list] = {}  # (column, rule) -> [requests, an example value]
        self.incomplete_requests: dict[tuple[str, str, str], int] = {}  # (route, part, status) -> requests
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(Collector(self))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def request(self, path: str, status: int | None, seconds: float) -> None:
        key = (path if path in self.routes else OTHER_ROUTE, NO_ANSWER if status is None else str(status))
        self.requests[key] = self.requests.get(key, 0) + 1
        if path == SCORING_ROUTE:
            self.bucket_counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            self.latency_sum += seconds

    def incomplete(self, path: str, part: str, status: int | None) -> None:
        """A request whose client did not finish sending ``part`` (``head`` or ``body``), answered ``status``
        (``None``: it went away first): its answer is counted, the request apart from the scoring figures."""
        route, answer = path if path in self.routes else OTHER_ROUTE, NO_ANSWER if status is None else str(status)
        self.requests[(route, answer)] = self.requests.get((route, answer), 0) + 1
        key = (route, part, answer)
        self.incomplete_requests[key] = self.incomplete_requests.get(key, 0) + 1

    def scored(self, model_version: str, arm: str, rows: int) -> None:
        key = (model_version, arm)
        self.rows_scored[key] = self.rows_scored.get(key, 0) + rows

    def rejected(self, causes: Iterable[tuple[str, str, str | None]]) -> None:
        """A scoring request rejected for ``causes``, each ``(column, rule, example)`` (``row_checks.Cause``):
        counted once under each distinct (column, rule), which keeps its newest example."""
        self.rejected_requests += 1
        seen = set()
        for column, rule, example in causes:
            key = (column, rule)
            if key not in self.rejections and len(self.rejections) >= MAX_REJECTION_CAUSES:
                key = OTHER_CAUSE
            if key in seen:
                continue
            seen.add(key)
            counted = self.rejections.setdefault(key, [0, None])
            counted[0] += 1
            counted[1] = example if key != OTHER_CAUSE else None

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)

    def snapshot(self) -> dict[str, Any]:
        """The counters now, as JSON-ready data (call it on the event loop's thread)."""
        sources = self.sources()
        return {
            "time": time.time(),
            "instance": f"{os.getpid()}@{self.started:.6f}",  # the counters restart with the process
            "requests": [[route, status, n] for (route, status), n in self.requests.items()],
            "latency_buckets": [*LATENCY_BUCKETS, "+Inf"],
            "latency_counts": list(self.bucket_counts),
            "latency_sum": self.latency_sum,
            "rows_scored": [[version, arm, n] for (version, arm), n in self.rows_scored.items()],
            "invalid_rows": sources["invalid_rows"],
            "rejected_requests": self.rejected_requests,
            "rejections": [[column, rule, n, example] for (column, rule), (n, example) in self.rejections.items()],
            "incomplete_requests": [
                [route, part, status, n] for (route, part, status), n in self.incomplete_requests.items()
            ],
            "logs": {name: _log_figures(status) for name, status in sources["logs"].items()},
        }

    def write_snapshot(self, directory: Path, snapshot: dict[str, Any]) -> Path:
        """``snapshot`` as ``telemetry-<time>-<pid>.json`` in ``directory``, whole or not at all, readable by its
        owner alone as the log beside it."""
        process = f"{os.getpid()}-{self.segment}" if self.segment else str(os.getpid())
        path = Path(directory) / f"{SNAPSHOT_PREFIX}{time.time_ns():020d}-{process}{SNAPSHOT_SUFFIX}"
        partial = path.with_name(f".{path.name}.partial")
        with open_private(partial) as file:
            file.write(orjson.dumps(snapshot))
        partial.replace(path)
        return path


def _log_figures(status: dict[str, Any]) -> dict[str, int]:
    keys = ("rows_written", "pending_rows", "dead_lettered_rows", "dropped_rows", "files_to_ship")
    return {key: status[key] for key in keys if key in status}


class Collector:
    """The figures as Prometheus metric families, made when ``/metrics`` is read; ``telemetry`` may be any object
    with ``Telemetry``'s counters and ``sources`` (worker_metrics.py gives one summed over an endpoint's workers)."""

    def __init__(self, telemetry: Telemetry | SnapshotView):
        self.telemetry = telemetry

    def collect(self) -> Iterator[Metric]:
        t = self.telemetry
        sources = t.sources()
        requests = CounterMetricFamily(
            "mlops_requests", "Requests answered, by route and status", labels=["route", "status"]
        )
        for (route, status), n in list(t.requests.items()):
            requests.add_metric([route, status], n)
        yield requests
        cumulative, buckets = 0, []
        for bound, n in zip([*map(str, LATENCY_BUCKETS), "+Inf"], t.bucket_counts, strict=True):
            cumulative += n
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily(
            "mlops_request_seconds",
            "Scoring requests: time from reaching the app to the end of the answer",
            buckets,
            t.latency_sum,
        )
        rows = CounterMetricFamily(
            "mlops_rows_scored", "Rows scored, by model version and arm", labels=["model_version", "arm"]
        )
        for (version, arm), n in list(t.rows_scored.items()):
            rows.add_metric([version, arm], n)
        yield rows
        yield CounterMetricFamily(
            "mlops_invalid_rows", "Rows scored although they break the schema", sources["invalid_rows"]
        )
        rejected = CounterMetricFamily(
            "mlops_rejected_requests",
            "Scoring requests rejected (400), by the column and rule that rejected them",
            labels=["column", "rule"],
        )
        for (column, rule), (n, _) in list(t.rejections.items()):
            rejected.add_metric([column, rule], n)
        yield rejected
        incomplete = CounterMetricFamily(
            "mlops_incomplete_requests",
            "Requests whose client never finished sending their head or body (408, or gone), by route and part",
            labels=["route", "part"],
        )
        by_part: dict[tuple[str, str], int] = {}
        for (route, part, _), n in list(t.incomplete_requests.items()):
            by_part[(route, part)] = by_part.get((route, part), 0) + n
        for (route, part), n in by_part.items():
            incomplete.add_metric([route, part], n)
        yield incomplete
        yield from _served(sources["served"])
        yield from _logs(sources["logs"])


def _served(served: dict[str, Any]):
    """What is served: one gauge of 1 labelled with the versions and the rollout, and the rollout's share."""
    info = GaugeMetricFamily(
        "mlops_model_info",
        "The served versions and the rollout (always 1)",
        labels=["pipeline", "model_version", "challenger_version", "rollout"],
    )
    names = ("pipeline", "model_version", "challenger_version", "rollout")
    info.add_metric([served[name] or "" for name in names], 1)
    yield info
    yield GaugeMetricFamily("mlops_rollout_share", "Share of requests routed to the challenger", served["share"])


def _logs(logs: dict[str, dict[str, Any]]):
    """The inference and shadow logs' figures, by log."""
    families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {
        "pending_rows": GaugeMetricFamily("mlops_log_pending_rows", "Rows queued for the log", labels=["log"]),
        "rows_written": CounterMetricFamily("mlops_log_rows_written", "Rows written to the log", labels=["log"]),
        "dead_lettered_rows": CounterMetricFamily(
            "mlops_log_dead_lettered_rows", "Rows set aside in the dead letter", labels=["log"]
        ),
        "dropped_rows": CounterMetricFamily("mlops_log_dropped_rows", "Rows lost to bound memory", labels=["log"]),
        "files_to_ship": GaugeMetricFamily(
            "mlops_log_files_to_ship", "Files spooled (log parts, telemetry snapshots), not shipped", labels=["log"]
        ),
    }
    for name, status in logs.items():
        for key, value in _log_figures(status).items():
            families[key].add_metric([name], value)
    yield from families.values()


def summarise(snapshots: Iterable[dict[str, Any]], start: float, end: float) -> dict[str, Any]:
    """The endpoint's scoring figures over ``[start, end]`` (seconds since the epoch) from its snapshots.

    Counters are differences per process: the last snapshot at or before ``end`` minus the last at or before
    ``start`` (nothing, for a process started within the window), summed over processes and replicas.
    Traffic after a process's last snapshot is not seen. Latency quantiles are interpolated within the
    histogram's buckets (as Prometheus' ``histogram_quantile``): within a bucket's width, ``None`` with no
    request. A request whose client never finished sending it is not a scoring request the endpoint served:
    ``requests`` leaves it out, and ``incomplete_requests`` counts it by part. The log figures are the latest
    of each process (summed). ``rejections`` lists the rejected requests' causes, ``[column, rule, requests,
    example]``, most requests first.
    """
    by_instance: dict[str, list[dict]] = {}
    for snapshot in snapshots:
        if snapshot["time"] <= end:
            by_instance.setdefault(snapshot["instance"], []).append(snapshot)
    requests: dict[str, int] = {}
    counts: list[int] = [0] * (len(LATENCY_BUCKETS) + 1)
    rows = invalid = rejected = 0
    incomplete: dict[str, int] = {}  # part -> scoring requests whose client never finished it
    rejections: dict[tuple[str, str], list] = {}  # (column, rule) -> [requests, newest example]
    logs: dict[str, int] = {}
    for series in by_instance.values():
        series.sort(key=lambda s: s["time"])
        last = series[-1]
        if last["time"] < start:
            continue
        before = [s for s in series if s["time"] <= start]
        first = before[-1] if before else None
        for status, n in _by_status(last).items():
            requests[status] = requests.get(status, 0) + n - (_by_status(first).get(status, 0) if first else 0)
        for i, n in enumerate(last["latency_counts"]):
            counts[i] += n - (first["latency_counts"][i] if first else 0)
        rows += _rows(last) - (_rows(first) if first else 0)
        invalid += last["invalid_rows"] - (first["invalid_rows"] if first else 0)
        rejected += last.get("rejected_requests", 0) - (first.get("rejected_requests", 0) if first else 0)
        for part, n in _incomplete_by_part(last).items():
            incomplete[part] = incomplete.get(part, 0) + n - (_incomplete_by_part(first).get(part, 0) if first else 0)
        earlier = _rejections(first) if first else {}
        for key, (n, example) in _rejections(last).items():
            counted = rejections.setdefault(key, [0, None])
            counted[0] += n - earlier.get(key, (0, None))[0]
            counted[1] = example or counted[1]
        for figures in last["logs"].values():
            for figure in ("pending_rows", "dead_lettered_rows", "dropped_rows"):
                logs[figure] = logs.get(figure, 0) + figures.get(figure, 0)
    total = sum(requests.values())
    errors = sum(n for status, n in requests.items() if status.isdigit() and int(status) >= 400)
    return {
        "start": start,
        "end": end,
        "requests": total,
        "requests_by_status": requests,
        "error_rate": errors / total if total else None,
        "server_errors": sum(n for status, n in requests.items() if status.isdigit() and int(status) >= 500),
        "rows_scored": rows,
        "invalid_rows": invalid,
        "rejected_requests": rejected,
        "incomplete_requests": incomplete,
        "rejections": sorted(
            ([column, rule, n, example] for (column, rule), (n, example) in rejections.items() if n > 0),
            key=lambda cause: (-cause[2], cause[0], cause[1]),
        ),
        **{f"latency_p{round(q * 100)}_s": histogram_quantile(q, counts) for q in (0.5, 0.95, 0.99)},
        "log": logs,
    }


def stored_snapshots(store: ArtifactStore, prefix: str, since: float) -> list[dict[str, Any]]:
    """The snapshots under ``prefix`` (``locations.log_prefix(pipeline)``) that ``summarise`` needs for a
    window starting at ``since`` (seconds since the epoch): every one written at or after it, and for each
    process still writing then, its last one before it (the baseline its counters are subtracted from).

    A snapshot is written just after it is taken, so its name's time is never earlier than its own; a name
    names the process (pid, and replica once shipped), so the baseline is found without reading older files.
    A long-running endpoint's history costs one listing, never a read per file.
    """
    since_ns = int(since * 1e9)
    before: dict[str, str] = {}  # process -> its last key before the window
    keys, processes = [], set()
    for key in store.list(prefix):
        name = key.rsplit("/", 1)[-1]
        if not (name.startswith(SNAPSHOT_PREFIX) and name.endswith(SNAPSHOT_SUFFIX)):
            continue
        written, _, process = name.removeprefix(SNAPSHOT_PREFIX).removesuffix(SNAPSHOT_SUFFIX).partition("-")
        if not written.isdigit():
            continue
        if int(written) < since_ns:
            before[process] = key  # keys are sorted: the last one wins
        else:
            keys.append(key)
            processes.add(process)
    keys += [key for process, key in before.items() if process in processes]
    return [orjson.loads(store.read_bytes(key)) for key in sorted(keys)]


def histogram_quantile(q: float, counts: list[int]) -> float | None:
    """The ``q`` quantile of a histogram of ``LATENCY_BUCKETS`` (per-bucket counts, the last over the largest
    bound), linear within its bucket; the largest bound when it falls beyond it."""
    total = sum(counts)
    if total == 0:
        return None
    rank, seen, i = q * total, 0, 0
    while counts[i] == 0 or seen + counts[i] < rank:  # stops at the latest at the last non-empty bucket
        seen += counts[i]
        i += 1
    if i == len(LATENCY_BUCKETS):
        return float(LATENCY_BUCKETS[-1])
    low = LATENCY_BUCKETS[i - 1] if i else 0.0
    return low + (LATENCY_BUCKETS[i] - low) * (rank - seen) / counts[i]


def _by_status(snapshot: dict) -> dict[str, int]:
    """The scoring requests the endpoint served, by status: its answers, less those to clients that never
    finished sending a request."""
    out: dict[str, int] = {}
    for route, status, n in snapshot["requests"]:
        if route == SCORING_ROUTE:
            out[status] = out.get(status, 0) + n
    for route, _, status, n in snapshot.get("incomplete_requests", ()):
        if route == SCORING_ROUTE:
            out[status] -= n
    return out


def _incomplete_by_part(snapshot: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for route, part, _, n in snapshot.get("incomplete_requests", ()):
        if route == SCORING_ROUTE:
            out[part] = out.get(part, 0) + n
    return out


def _rejections(snapshot: dict) -> dict[tuple[str, str], tuple[int, str | None]]:
    """A snapshot's rejected requests by (column, rule); none in a snapshot of an endpoint that did not count
    them yet."""
    return {(column, rule): (n, example) for column, rule, n, example in snapshot.get("rejections", ())}


def _rows(snapshot: dict) -> int:
    return sum(n for _, _, n in snapshot["rows_scored"])
