"""The endpoint's telemetry: counters moved by requests served through the real ASGI app, the Prometheus
exposition of them, and the per-window summary of its snapshots."""

import asyncio

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.linear_model import LogisticRegression

from mlops_assets.data.snapshot import read_source
from mlops_assets.model.pipeline_model import fit_pipeline_model
from mlops_assets.resources.artifact_store import FsspecArtifactStore
from mlops_assets.serving.app import create_app
from mlops_assets.serving.inference_log import InferenceLogWriter, log_schema
from mlops_assets.serving.loading import LoadedModel
from mlops_assets.serving.telemetry import LATENCY_BUCKETS, histogram_quantile, stored_snapshots, summarise
from mlops_assets.spec import load_spec
from tests.conftest import REPO

SPEC = load_spec(REPO / "pipelines" / "breast_cancer.yaml")
DTYPES = {c: SPEC.schema_.columns[c].dtype for c in SPEC.input_columns}


@pytest.fixture(scope="module")
def model():
    data = read_source(SPEC, REPO / "pipelines").frame
    return LoadedModel("7", fit_pipeline_model(SPEC, data, LogisticRegression(max_iter=1000)))


class Client:
    """Drives the ASGI app in process: its lifespan as a task, and one request at a time."""

    def __init__(self, app):
        self.app = app
        self.events: asyncio.Queue = asyncio.Queue()
        self.replies: asyncio.Queue = asyncio.Queue()
        self.task = None

    async def lifespan(self, event: str) -> None:
        if self.task is None:
            self.task = asyncio.create_task(self.app({"type": "lifespan"}, self.events.get, self.replies.put))
        await self.events.put({"type": f"lifespan.{event}"})
        reply = await self.replies.get()
        assert reply["type"] == f"lifespan.{event}.complete", reply
        if event == "shutdown":
            await self.task

    async def call(self, method: str, path: str, body: bytes = b"", headers=()) -> tuple[int, dict, bytes]:
        scope = {"type": "http", "method": method, "path": path, "headers": list(headers)}
        chunks = [{"type": "http.request", "body": body, "more_body": False}]
        sent = []

        async def receive():
            return chunks.pop(0) if chunks else {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        await self.app(scope, receive, send)
        return sent[0]["status"], dict(sent[0]["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


def row(value: float | str = 14.0) -> bytes:
    return orjson.dumps({"dataframe_records": [dict.fromkeys(DTYPES, value)]})


def metrics(text: str) -> dict:
    """{(sample name, labels as a sorted tuple): value} of an exposition."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def serve(app, requests):
    async def run():
        client = Client(app)
        await client.lifespan("startup")
        answers = [await client.call(*r) for r in requests]
        await client.lifespan("shutdown")
        return answers

    return asyncio.run(run())


JSON = [(b"content-type", b"application/json")]


def test_every_status_is_counted_by_route_and_the_scrape_parses(model, tmp_path):
    writer = InferenceLogWriter(tmp_path / "log", log_schema(DTYPES, SPEC.task), flush_seconds=0.05)
    app = create_app(SPEC.name, DTYPES, lambda: model, writer, admin_token="secret")
    answers = serve(
        app,
        [
            ("POST", "/invocations", row(), JSON),
            ("POST", "/invocations", row(), JSON),
            ("POST", "/invocations", b"{not json", JSON),  # 400
            ("POST", "/invocations", row("x"), JSON),  # 400: breaks the schema (reject)
            ("GET", "/admin/status", b"", []),  # 401
            ("GET", "/nowhere", b"", []),  # 404, under route "other"
            ("GET", "/invocations", b"", []),  # 405
            ("GET", "/ping", b"", []),
            ("GET", "/metrics", b"", []),
        ],
    )
    assert [a[0] for a in answers] == [200, 200, 400, 400, 401, 404, 405, 200, 200]
    _, headers, body = answers[-1]
    assert headers[b"content-type"].startswith(b"text/plain; version=0.0.4")
    seen = metrics(body.decode())
    count = "mlops_requests_total"
    assert seen[(count, (("route", "/invocations"), ("status", "200")))] == 2
    assert seen[(count, (("route", "/invocations"), ("status", "400")))] == 2
    assert seen[(count, (("route", "/admin/status"), ("status", "401")))] == 1
    assert seen[(count, (("route", "other"), ("status", "404")))] == 1
    assert seen[(count, (("route", "/invocations"), ("status", "405")))] == 1
    assert seen[(count, (("route", "/ping"), ("status", "200")))] == 1
    assert ("mlops_requests_total", (("route", "/metrics"), ("status", "200"))) not in seen  # counted once answered
    assert seen[("mlops_request_seconds_count", ())] == 5  # scoring requests only
    assert seen[("mlops_request_seconds_bucket", (("le", "+Inf"),))] == 5
    assert 0 < seen[("mlops_request_seconds_sum", ())] < 5
    assert seen[("mlops_rows_scored_total", (("arm", "champion"), ("model_version", "7")))] == 2
    assert seen[("mlops_invalid_rows_total", ())] == 0
    info = (("challenger_version", ""), ("model_version", "7"), ("pipeline", SPEC.name), ("rollout", ""))
    assert seen[("mlops_model_info", info)] == 1
    assert seen[("mlops_log_dead_lettered_rows_total", (("log", "inference"),))] == 0
    assert seen[("mlops_log_dropped_rows_total", (("log", "inference"),))] == 0
    assert ("mlops_log_pending_rows", (("log", "inference"),)) in seen


def test_a_failing_model_is_counted_as_a_500_and_flagged_rows_as_invalid(model):
    inner = model.model

    class Broken:
        version, path, fast_path_check = "8", "python", "off"
        model = inner

        def predict(self, columns, n_rows):
            raise ValueError("boom")

    calls = iter([model, Broken()])
    app = create_app(SPEC.name, DTYPES, lambda: next(calls), on_invalid="flag", admin_token="secret")
    auth = [(b"authorization", b"Bearer secret")]
    answers = serve(
        app,
        [
            ("POST", "/invocations", row("x"), JSON),  # scored, flagged
            ("POST", "/admin/reload", b"", auth),  # loads Broken: its sample row fails, the old one stays
            ("GET", "/metrics", b"", []),
        ],
    )
    assert [a[0] for a in answers] == [200, 500, 200]
    seen = metrics(answers[-1][2].decode())
    assert seen[("mlops_invalid_rows_total", ())] == 1
    assert seen[("mlops_requests_total", (("route", "/admin/reload"), ("status", "500")))] == 1


def test_metrics_need_the_scoring_token_where_scoring_does(model):
    app = create_app(SPEC.name, DTYPES, lambda: model, scoring_token="score", admin_token="admin")
    answers = serve(
        app,
        [
            ("GET", "/metrics", b"", []),
            ("GET", "/metrics", b"", [(b"authorization", b"Bearer admin")]),
            ("GET", "/metrics", b"", [(b"authorization", b"Bearer score")]),
        ],
    )
    assert [a[0] for a in answers] == [401, 401, 200]


def test_two_apps_in_one_process_keep_their_own_counts(model):
    first = create_app(SPEC.name, DTYPES, lambda: model)
    second = create_app(SPEC.name, DTYPES, lambda: model)
    serve(first, [("POST", "/invocations", row(), JSON)])
    (answer,) = serve(second, [("GET", "/metrics", b"", [])])
    assert ("mlops_requests_total", (("route", "/invocations"), ("status", "200"))) not in metrics(answer[2].decode())


def test_a_snapshot_is_written_beside_the_log_at_shutdown_and_summarised(model, tmp_path):
    writer = InferenceLogWriter(tmp_path / "log", log_schema(DTYPES, SPEC.task), flush_seconds=0.05)
    app = create_app(SPEC.name, DTYPES, lambda: model, writer)
    serve(app, [("POST", "/invocations", row(), JSON)] * 3 + [("POST", "/invocations", b"{", JSON)])
    (snapshot,) = stored_snapshots(FsspecArtifactStore(root=str(tmp_path)), "log", 0)
    summary = summarise([snapshot], snapshot["time"] - 60, snapshot["time"])
    assert summary["requests"] == 4 and summary["requests_by_status"] == {"200": 3, "400": 1}
    assert summary["error_rate"] == 0.25 and summary["rows_scored"] == 3
    assert 0 < summary["latency_p50_s"] <= summary["latency_p99_s"] <= LATENCY_BUCKETS[-1]
    assert summary["log"] == {"pending_rows": 0, "dead_lettered_rows": 0, "dropped_rows": 0}


def test_the_snapshot_written_at_shutdown_reaches_the_object_store_with_the_log(model, tmp_path, s3_bucket):
    """A spooled endpoint's snapshots stayed in its spool, where the pipeline never looks."""
    spool = tmp_path / "spool"
    shipped = f"{s3_bucket}/{SPEC.name}/inference_log"
    writer = InferenceLogWriter(spool, log_schema(DTYPES, SPEC.task), flush_seconds=0.05, ship_to=shipped)
    serve(create_app(SPEC.name, DTYPES, lambda: model, writer), [("POST", "/invocations", row(), JSON)] * 2)
    assert list(spool.iterdir()) == []
    store = FsspecArtifactStore(root=s3_bucket)
    (snapshot,) = stored_snapshots(store, f"{SPEC.name}/inference_log", 0)
    assert summarise([snapshot], 0, snapshot["time"])["requests"] == 2
    assert snapshot["logs"]["inference"]["rows_written"] == 2  # taken once the log was flushed


def stored(store: FsspecArtifactStore, key: str, instance: str, time: float, ok: int) -> None:
    zeros = [0] * (len(LATENCY_BUCKETS) + 1)
    store.write_bytes(key, orjson.dumps(snapshot(instance, time, ok, 0, zeros)))


def name(time: float, process: str) -> str:
    return f"log/telemetry-{round(time * 1e9):020d}-{process}.json"


def test_stored_snapshots_are_those_of_the_window_and_each_live_process_s_last_before_it(tmp_path):
    store = FsspecArtifactStore(root=str(tmp_path))
    store.write_bytes(name(10, "1-a"), b"not json: an old snapshot is never read")
    stored(store, name(90, "1-a"), "1@0", 90, 10)  # a's baseline
    stored(store, name(130, "1-a"), "1@0", 130, 25)
    stored(store, name(150, "1-a"), "1@0", 150, 40)
    stored(store, name(80, "1-b"), "1@5", 80, 7)  # b stopped before the window: not needed
    stored(store, name(95, "2"), "2@9", 95, 3)  # baseline of a process not shipped (no replica in the name)
    stored(store, name(120, "2"), "2@9", 120, 4)
    stored(store, name(140, "3-a"), "3@139", 140, 6)  # started within the window
    store.write_bytes("log/part-00000000000000000001-a.parquet", b"a log file, not a snapshot")
    store.write_bytes("log/dead-letter-a.jsonl", b"{}")
    snapshots = stored_snapshots(store, "log", since=100)
    assert sorted((s["instance"], s["time"]) for s in snapshots) == [
        ("1@0", 90),
        ("1@0", 130),
        ("1@0", 150),
        ("2@9", 95),
        ("2@9", 120),
        ("3@139", 140),
    ]
    summary = summarise(snapshots, 100, 200)
    assert summary["requests_by_status"]["200"] == (40 - 10) + (4 - 3) + 6
    assert stored_snapshots(store, "log", since=1000) == [] and stored_snapshots(store, "elsewhere", 0) == []


def snapshot(instance: str, time: float, ok: int, errors: int, latency_counts: list[int]) -> dict:
    return {
        "time": time,
        "instance": instance,
        "requests": [["/invocations", "200", ok], ["/invocations", "500", errors], ["/ping", "200", 99]],
        "latency_counts": latency_counts,
        "latency_sum": 0.0,
        "rows_scored": [["1", "champion", ok]],
        "invalid_rows": 0,
        "logs": {"inference": {"pending_rows": 1, "dead_lettered_rows": 0, "dropped_rows": 0}},
    }


def test_a_window_counts_each_process_from_its_last_snapshot_before_the_start():
    zeros = [0] * (len(LATENCY_BUCKETS) + 1)
    fast = [*zeros[:3], 10, *zeros[4:]]  # all in (0.5 ms, 1 ms]
    snapshots = [
        snapshot("a", 100, 10, 0, fast),
        snapshot("a", 160, 30, 2, [*zeros[:3], 32, *zeros[4:]]),
        snapshot("a", 220, 50, 2, zeros),  # after the window
        snapshot("b", 130, 8, 0, [*zeros[:3], 8, *zeros[4:]]),  # a process started within the window
        snapshot("c", 50, 5, 5, fast),  # a process gone before the window
    ]
    summary = summarise(snapshots, 100, 200)
    assert summary["requests"] == 30 and summary["requests_by_status"] == {"200": 28, "500": 2}
    assert summary["error_rate"] == pytest.approx(2 / 30) and summary["server_errors"] == 2
    assert summary["rows_scored"] == 28
    assert summary["latency_p50_s"] == pytest.approx(0.0005 + 0.0005 * 15 / 30)
    assert summary["log"]["pending_rows"] == 2


def test_quantiles_interpolate_within_a_bucket_and_stop_at_the_largest_bound():
    counts = [0] * (len(LATENCY_BUCKETS) + 1)
    assert histogram_quantile(0.5, counts) is None
    counts[0] = 4
    assert histogram_quantile(0.5, counts) == pytest.approx(LATENCY_BUCKETS[0] / 2)
    counts[-1] = 996
    assert histogram_quantile(0.99, counts) == LATENCY_BUCKETS[-1]
