"""Alerts for real: a webhook receiver on 127.0.0.1 in a thread; one that is down or slow never holds a caller
longer than the timeout, and is logged and counted."""

import json
import logging
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mlops_assets.alerts.delivery import WEBSERVER_URL_ENV, asset_link, run_link, send_alerts
from mlops_assets.naming import AlertEvent
from mlops_assets.spec import load_spec
from mlops_assets.spec.operations import ALERT_COMMANDS_ENV

REPO = Path(__file__).resolve().parents[3]
SPEC = load_spec(REPO / "pipelines" / "breast_cancer.yaml")
LOG = logging.getLogger("test_alerts")


class Receiver(ThreadingHTTPServer):
    """Records each POST's headers and JSON body; answers after ``delay`` seconds."""

    def __init__(self, delay: float = 0.0):
        self.delay, self.received = delay, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(outer.delay)
                outer.received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server_port}/hook"


@pytest.fixture
def receiver():
    server = Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def with_alerts(*alerts: dict):
    return SPEC.model_validate({**SPEC.model_dump(by_alias=True), "alerts": list(alerts)})


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_webhook_receives_the_pipeline_event_message_link_and_time(receiver, monkeypatch):
    monkeypatch.setenv("MLOPS_ALERT_TOKEN", "s3cret")
    monkeypatch.delenv(WEBSERVER_URL_ENV, raising=False)
    spec = with_alerts({"webhook": receiver.url, "headers_from_env": {"Authorization": "MLOPS_ALERT_TOKEN"}})
    link = asset_link(SPEC.name, "evaluation_report")
    outcome = send_alerts(spec, AlertEvent.gate_failed, "v2 failed the gate", link, LOG)
    assert outcome.delivered == [receiver.url] and outcome.failed == {}
    ((headers, body),) = receiver.received
    assert headers["Authorization"] == "s3cret" and headers["Content-Type"] == "application/json"
    assert {k: body[k] for k in ("pipeline", "event", "message", "link")} == {
        "pipeline": "breast_cancer",
        "event": "gate_failed",
        "message": "v2 failed the gate",
        "link": "http://localhost:3000/assets/breast_cancer/evaluation_report",
    }
    assert body["time"].endswith("+00:00")


def test_an_alert_fires_only_on_its_events_and_the_dagster_log_always_hears(receiver, caplog):
    spec = with_alerts({"webhook": receiver.url, "on": ["drift"]})
    with caplog.at_level(logging.WARNING, logger="test_alerts"):
        outcome = send_alerts(spec, AlertEvent.rollback, "back to v1", "link", LOG)
    assert outcome.delivered == [] and receiver.received == []
    assert "alert rollback: back to v1 (link)" in caplog.text


def test_links_follow_the_webserver_url(monkeypatch):
    monkeypatch.setenv(WEBSERVER_URL_ENV, "https://dagster.example.com/")
    assert asset_link("wine", "drift_report") == "https://dagster.example.com/assets/wine/drift_report"
    assert run_link("abc") == "https://dagster.example.com/runs/abc"


def test_a_receiver_that_is_down_fails_at_once_and_is_counted_and_logged(receiver, caplog):
    down = f"http://127.0.0.1:{closed_port()}/hook"
    spec = with_alerts({"webhook": down, "timeout_s": 2}, {"webhook": receiver.url})
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="test_alerts"):
        outcome = send_alerts(spec, AlertEvent.drift, "drifted", "link", LOG)
    assert time.monotonic() - started < 2
    assert outcome.delivered == [receiver.url] and list(outcome.failed) == [down]
    assert f"alert drift not delivered to {down}" in caplog.text


def test_a_slow_receiver_holds_the_caller_no_longer_than_its_timeout(caplog):
    slow = Receiver(delay=3)
    threading.Thread(target=slow.serve_forever, daemon=True).start()
    try:
        spec = with_alerts({"webhook": slow.url, "timeout_s": 0.5})
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="test_alerts"):
            outcome = send_alerts(spec, AlertEvent.run_failed, "run failed", "link", LOG)
        assert time.monotonic() - started < 1.0
    finally:
        slow.shutdown()
        slow.server_close()
    assert outcome.delivered == [] and outcome.failed[slow.url]
    assert f"not delivered to {slow.url}" in caplog.text


def test_an_allowed_command_gets_the_json_on_stdin_without_a_shell(tmp_path, monkeypatch):
    monkeypatch.setenv(ALERT_COMMANDS_ENV, sys.executable)
    out = tmp_path / "alert.json"
    copy = f"import sys, pathlib; pathlib.Path({str(out)!r}).write_bytes(sys.stdin.buffer.read())"
    spec = with_alerts({"command": [sys.executable, "-c", copy]})
    outcome = send_alerts(spec, AlertEvent.skew, "skewed; $(touch nope)", "link", LOG)
    assert outcome.delivered == [sys.executable]
    assert json.loads(out.read_text())["message"] == "skewed; $(touch nope)"


def test_a_command_that_fails_is_counted_with_its_exit_status(monkeypatch):
    monkeypatch.setenv(ALERT_COMMANDS_ENV, sys.executable)
    spec = with_alerts({"command": [sys.executable, "-c", "raise SystemExit(3)"]})
    outcome = send_alerts(spec, AlertEvent.slo_failed, "p99 over", "link", LOG)
    assert "exited with 3" in outcome.failed[sys.executable]
