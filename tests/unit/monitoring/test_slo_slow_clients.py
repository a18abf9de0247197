"""Issue 19: 300 requests answered in time, then 20 clients that send a request head and stall. Their 408s are the
clients' doing: neither objective fails and a champion that answered every request in time is not rolled back;
the same 20 requests served late by the endpoint fail both and roll it back."""

import datetime as dt

from mlops_assets.monitoring.slo import judge_slo, rollback_decision
from mlops_assets.serving.telemetry import SCORING_ROUTE, Telemetry, summarise
from mlops_assets.spec.operations import Slo

NOW = 1_800_000_000.0
PROMOTED = NOW - 600
SLO = Slo(latency_p99_ms=250, max_error_rate=0.01, min_requests=100, rollback=True)


def snapshots(late: bool) -> list[dict]:
    """The endpoint's counters before the promotion and now: 300 requests answered in 2 ms, then 20 that took
    10 s, the clients' stalled heads (``late=False``) or the endpoint's own slow 500s (``late=True``)."""
    telemetry = Telemetry([SCORING_ROUTE], lambda: {"invalid_rows": 0, "logs": {}})
    before = {**telemetry.snapshot(), "time": PROMOTED - 1}
    for _ in range(300):
        telemetry.request(SCORING_ROUTE, 200, 0.002)
    for _ in range(20):
        if late:
            telemetry.request(SCORING_ROUTE, 500, 10.0)
        else:
            telemetry.incomplete(SCORING_ROUTE, "head", 408)
    return [before, {**telemetry.snapshot(), "time": NOW - 5}]


def verdicts_and_decision(late: bool):
    taken = snapshots(late)
    summary = summarise(taken, NOW - 900, NOW)
    verdicts = judge_slo(SLO, summary)
    promoted_at = dt.datetime.fromtimestamp(PROMOTED, dt.UTC).isoformat()
    return summary, verdicts, rollback_decision(SLO, taken, verdicts, "2", promoted_at, "1")


def test_clients_that_stall_fail_no_objective_and_roll_nothing_back():
    summary, verdicts, decision = verdicts_and_decision(late=False)
    assert summary["requests"] == 300 and summary["incomplete_requests"] == {"head": 20}
    assert all(v.passed and v.judged for v in verdicts), [v.message for v in verdicts]
    assert decision.target is None and "every objective met" in decision.reason


def test_requests_the_endpoint_served_late_still_fail_both_and_roll_back():
    summary, verdicts, decision = verdicts_and_decision(late=True)
    assert summary["requests"] == 320
    assert not any(v.passed for v in verdicts)
    assert decision.target == "1"
