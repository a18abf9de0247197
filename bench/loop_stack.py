"""What the loop bench runs beside the framework: the scenario's Dagster instance and daemon, a webhook that
counts alerts, a client that counts refused requests, and what it reads back from the instance."""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from tests.daemon import Daemon


class Timeout(Exception):
    """A scenario ran past its cap."""


class AlertReceiver:
    """A webhook on 127.0.0.1 that keeps every alert's event and arrival time."""

    def __init__(self):
        self.received: list[tuple[float, str]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((time.time(), json.loads(body).get("event", "?")))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def since(self, start: float) -> list[tuple[float, str]]:
        return [(t, event) for t, event in self.received if t >= start]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def send_counting(url: str, frame, batch: int) -> tuple[int, int]:
    """POST ``frame``'s rows as ``send_rows`` does, ``batch`` rows a request over one connection, but keep going
    on a refused request: (rows accepted, rows refused)."""
    columns = list(frame.columns)
    data = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
    target = urlsplit(url)
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
    accepted = refused = 0
    try:
        for start in range(0, len(data), batch):
            rows = data[start : start + batch]
            body = json.dumps({"dataframe_split": {"columns": columns, "data": rows}})
            connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                accepted += len(rows)
            elif response.status == 400:
                refused += len(rows)
            else:
                raise RuntimeError(f"{url} answered {response.status}")
    finally:
        connection.close()
    return accepted, refused


@dataclass(frozen=True)
class RetrainingRun:
    run_id: str
    created: float
    ended: float | None  # None: queued or running
    trigger: str


@dataclass(frozen=True)
class Materialized:
    at: float
    run_id: str
    values: dict


class Observer:
    """What the loop did, read back from the scenario's Dagster instance (the daemon writes it too)."""

    def __init__(self, instance, pipeline: str):
        import dagster as dg

        self.instance, self.pipeline = instance, pipeline
        self.key = lambda name: dg.AssetKey([pipeline, name])

    def retraining_runs(self) -> list[RetrainingRun]:
        import dagster as dg

        from mlops_assets.naming import PIPELINE_TAG, RETRAIN_TAG, TRIGGER_TAG

        records = self.instance.get_run_records(
            filters=dg.RunsFilter(tags={PIPELINE_TAG: self.pipeline, RETRAIN_TAG: "true"})
        )
        runs = [
            RetrainingRun(
                r.dagster_run.run_id,
                r.create_timestamp.timestamp(),
                r.end_time,
                r.dagster_run.tags.get(TRIGGER_TAG, ""),
            )
            for r in records
        ]
        return sorted(runs, key=lambda r: r.created)

    def materialized(self, name: str) -> list[Materialized]:
        """Every materialization of the pipeline's asset ``name``, oldest first."""
        records = self.instance.fetch_materializations(self.key(name), limit=1000, ascending=True).records
        return [
            Materialized(
                r.timestamp,
                r.run_id,
                {k: getattr(v, "value", v) for k, v in r.asset_materialization.metadata.items()},
            )
            for r in records
        ]

    def champion_moves(self) -> list[Materialized]:
        """Materializations of deployed_endpoint that served another version than the one before."""
        moves, serving = [], None
        for item in self.materialized("deployed_endpoint"):
            version = str(item.values.get("model_version"))
            if serving is not None and version != serving:
                moves.append(item)
            serving = version
        return moves

    def last_activity(self) -> tuple[bool, float]:
        """(whether a run is queued or running, the newest time a run was created or ended), over the runs that
        materialize the pipeline's assets: the portfolio's runs and the endpoint checks' (checks alone) go on
        every few minutes whatever the loop does, and would keep a scenario from ever settling."""
        import dagster as dg

        from mlops_assets.naming import PIPELINE_TAG

        records = self.instance.get_run_records(filters=dg.RunsFilter(tags={PIPELINE_TAG: self.pipeline}), limit=50)
        records = [r for r in records if r.dagster_run.asset_selection]
        busy = any(r.end_time is None and not r.dagster_run.is_finished for r in records)
        times = [r.create_timestamp.timestamp() for r in records] + [r.end_time for r in records if r.end_time]
        return busy, max(times, default=0.0)

    def sensors_ticked(self, names: list[str]) -> bool:
        """Whether the daemon has ticked each sensor in ``names`` at least once."""
        from dagster._core.definitions.run_request import InstigatorType

        ticked = set()
        for state in self.instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
            if self.instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1):
                ticked.add(state.instigator_name)
        return set(names) <= ticked


def max_at_once(runs: list[RetrainingRun], now: float) -> int:
    """The most runs queued or running at the same time (a run spans its creation to its end)."""
    edges = sorted([(r.created, 1) for r in runs] + [(r.ended or now, -1) for r in runs], key=lambda e: (e[0], e[1]))
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


def wait_until_settled(observer: Observer, interval: float, since: float, deadline: float, daemon: Daemon | None):
    """Until no run is queued or running and none was created or ended for two sensor intervals (nor since
    ``since``, the end of the event); ``Timeout`` at ``deadline``."""
    while True:
        busy, last = observer.last_activity()
        if not busy and time.time() - max(last, since) >= 2 * interval:
            return
        if time.time() > deadline:
            raise Timeout(f"not settled by the scenario's cap (a run still {'running' if busy else 'starting'})")
        if daemon is not None and daemon.process.poll() is not None:
            raise RuntimeError(f"dagster-daemon exited ({daemon.process.returncode}):\n{daemon.tail()}")
        time.sleep(2)
