"""Several workers' figures summed into the endpoint's: counters and histogram buckets add up, and the
Prometheus text of the sum is what one process with all the traffic would show."""

import re

from prometheus_client.parser import text_string_to_metric_families

from mlops_assets.serving.telemetry import Telemetry
from mlops_assets.serving.worker_metrics import (
    exposition,
    merge_arms,
    merge_log_status,
    merge_requests,
    merge_snapshots,
)

ROUTES = ["/invocations", "/ping", "/metrics"]
SERVED = {"pipeline": "p", "model_version": "3", "challenger_version": None, "rollout": None, "share": 0.0}


def worker(requests: int, seconds: float, rows_written: int) -> Telemetry:
    logs = {"inference": {"rows_written": rows_written, "pending_rows": 1, "dead_lettered_rows": 0, "dropped_rows": 0}}
    telemetry = Telemetry(ROUTES, lambda: {"invalid_rows": 2, "served": SERVED, "logs": logs})
    for _ in range(requests):
        telemetry.request("/invocations", 200, seconds)
        telemetry.scored("3", "champion", 1)
    telemetry.request("/nowhere", 404, 0.0)
    telemetry.rejected([("x", "le 5", "7.0")])
    return telemetry


def test_the_sum_of_two_workers_is_one_endpoint_with_all_their_traffic():
    one, two = worker(30, 0.0002, 10), worker(12, 0.003, 5)
    merged = merge_snapshots([one.snapshot(), two.snapshot()])
    families = {f.name: f for f in text_string_to_metric_families(exposition(merged, SERVED, []).decode())}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("mlops_requests_total", (("route", "/invocations"), ("status", "200")))] == 42
    assert samples[("mlops_requests_total", (("route", "other"), ("status", "404")))] == 2
    assert samples[("mlops_rows_scored_total", (("arm", "champion"), ("model_version", "3")))] == 42
    assert samples[("mlops_request_seconds_count", ())] == 42
    assert samples[("mlops_request_seconds_bucket", (("le", "0.00025"),))] == 30
    assert samples[("mlops_request_seconds_bucket", (("le", "0.005"),))] == 42
    assert samples[("mlops_invalid_rows_total", ())] == 4
    assert samples[("mlops_rejected_requests_total", (("column", "x"), ("rule", "le 5")))] == 2
    assert samples[("mlops_log_rows_written_total", (("log", "inference"),))] == 15
    assert re.search(r"^process_cpu_seconds_total ", exposition(merged, SERVED, []).decode(), re.MULTILINE)


def test_arms_requests_and_logs_add_up_across_workers():
    arms = merge_arms(
        [
            {"champion": {"requests": 3, "rows": 4, "errors": 0, "disagreements": 0}},
            {"champion": {"requests": 2, "rows": 2, "errors": 1, "disagreements": 0}, "challenger": {"requests": 1}},
        ]
    )
    assert arms == {
        "champion": {"requests": 5, "rows": 6, "errors": 1, "disagreements": 0},
        "challenger": {"requests": 1},
    }
    requests = merge_requests(
        [
            {"accepted": 3, "rejected": 1, "last_rejection": "", "invalid_rows": 0, "ignored_columns": {"a": 1}},
            {"accepted": 4, "rejected": 0, "last_rejection": "row 0", "invalid_rows": 2, "ignored_columns": {"a": 2}},
        ]
    )
    assert requests == {
        "accepted": 7,
        "rejected": 1,
        "last_rejection": "row 0",
        "invalid_rows": 2,
        "ignored_columns": {"a": 3},
    }
    log = merge_log_status(
        [
            {"rows_written": 5, "pending_rows": 1, "last_error": "", "dead_letter": None},
            {"rows_written": 7, "pending_rows": 0, "last_error": "disk full", "dead_letter": "/l/dead-letter-w1.jsonl"},
            None,
        ]
    )
    assert log["rows_written"] == 12 and log["pending_rows"] == 1 and log["last_error"] == "disk full"
    assert log["dead_letter"] == ["/l/dead-letter-w1.jsonl"] and len(log["workers"]) == 2
    assert merge_log_status([None, None]) is None
