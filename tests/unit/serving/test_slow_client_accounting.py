"""A request whose client never finished sending its body is the client's: the app answers it (408) or not (the
client went away) and counts it apart, by route and part, never among the scoring requests it served nor in
their latency; a body sent slowly but whole counts from the moment it was whole."""

import asyncio

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.linear_model import LogisticRegression

from mlops_assets.data.snapshot import read_source
from mlops_assets.model.pipeline_model import fit_pipeline_model
from mlops_assets.serving.app import create_app
from mlops_assets.serving.loading import LoadedModel
from mlops_assets.serving.telemetry import SCORING_ROUTE, Telemetry, summarise
from mlops_assets.spec import load_spec
from tests.conftest import REPO

SPEC = load_spec(REPO / "pipelines" / "breast_cancer.yaml")
DTYPES = {c: SPEC.schema_.columns[c].dtype for c in SPEC.input_columns}
BODY = orjson.dumps({"dataframe_records": [dict.fromkeys(DTYPES, 14.0)]})
DEADLINE_S = 0.3


@pytest.fixture(scope="module")
def app():
    data = read_source(SPEC, REPO / "pipelines").frame
    model = LoadedModel("1", fit_pipeline_model(SPEC, data, LogisticRegression(max_iter=1000)))
    return create_app(SPEC.name, DTYPES, lambda: model, body_timeout_s=DEADLINE_S)


async def scoring_request(app, messages: list) -> list[dict]:
    """One POST /invocations whose client sends ``messages`` in turn: a body chunk (bytes, more to come), a
    pause (seconds), ``"end"`` (the last chunk), ``"gone"`` (it disconnects) or ``"stall"`` (nothing more)."""
    scope = {"type": "http", "method": "POST", "path": SCORING_ROUTE, "headers": [(b"content-type", b"json")]}
    sent, pending = [], list(messages)

    async def receive():
        while pending:
            message = pending.pop(0)
            if isinstance(message, float):
                await asyncio.sleep(message)
            elif isinstance(message, bytes):
                return {"type": "http.request", "body": message, "more_body": True}
            elif message == "end":
                return {"type": "http.request", "body": BODY, "more_body": False}
            elif message == "gone":
                return {"type": "http.disconnect"}
        await asyncio.sleep(3600)  # "stall"

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    return sent


def test_a_body_past_its_deadline_or_abandoned_is_counted_apart_and_a_slow_whole_one_from_its_end(app):
    async def run():
        app.state = app.state.serving(await app.load())
        stalled = await scoring_request(app, [b"{", "stall"])
        gone = await scoring_request(app, [b"{", 0.2, "gone"])
        slow = await scoring_request(app, [b"", 0.2, "end"])  # whole within the deadline, after 0.2 s
        return stalled, gone, slow

    stalled, gone, slow = asyncio.run(run())
    assert stalled[0]["status"] == 408 and b"not complete within 0.3 s" in stalled[1]["body"]
    assert gone == []  # nobody to answer
    assert slow[0]["status"] == 200

    telemetry = app.telemetry
    assert telemetry.requests[(SCORING_ROUTE, "408")] == 1 and telemetry.requests[(SCORING_ROUTE, "none")] == 1
    assert sum(telemetry.bucket_counts) == 1 and telemetry.latency_sum < 0.1  # the 200, timed from its body's end
    snapshot = telemetry.snapshot()
    summary = summarise([snapshot], snapshot["time"] - 60, snapshot["time"])
    assert summary["requests"] == 1 and summary["requests_by_status"]["200"] == 1
    assert summary["incomplete_requests"] == {"body": 2}
    families = {f.name: f for f in text_string_to_metric_families(telemetry.exposition().decode())}
    incomplete = families["mlops_incomplete_requests"].samples
    samples = {(s.labels["route"], s.labels["part"]): s.value for s in incomplete}
    assert samples == {(SCORING_ROUTE, "body"): 2}


def test_a_late_head_is_an_answer_counted_apart_from_the_scoring_requests():
    telemetry = Telemetry([SCORING_ROUTE], lambda: {"invalid_rows": 0, "logs": {}})
    for _ in range(3):
        telemetry.request(SCORING_ROUTE, 200, 0.001)
    telemetry.incomplete(SCORING_ROUTE, "head", 408)
    telemetry.incomplete("/nowhere", "head", 408)
    assert telemetry.requests == {(SCORING_ROUTE, "200"): 3, (SCORING_ROUTE, "408"): 1, ("other", "408"): 1}
    assert sum(telemetry.bucket_counts) == 3
    snapshot = telemetry.snapshot()
    summary = summarise([snapshot], snapshot["time"] - 60, snapshot["time"])
    assert summary["requests"] == 3 and summary["error_rate"] == 0
    assert summary["incomplete_requests"] == {"head": 1}
