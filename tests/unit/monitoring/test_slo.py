"""The serving objectives judged on telemetry snapshots made by the endpoint's own ``Telemetry`` counters, and
when a failed one rolls ``champion`` back."""

import datetime as dt

import orjson
import pyarrow as pa
import pytest

from mlops_assets.monitoring.served_figures import served_figures, served_markdown
from mlops_assets.monitoring.slo import failed_requests, judge_slo, rollback_decision
from mlops_assets.naming import EndpointCheck
from mlops_assets.serving.telemetry import SCORING_ROUTE, Telemetry, summarise
from mlops_assets.spec.operations import Slo
from tests.unit.fakes import MemoryArtifactStore

NOW = 1_800_000_000.0
WINDOW = 15 * 60


def snapshot(telemetry: Telemetry, at: float) -> dict:
    taken = telemetry.snapshot()
    taken["time"] = at  # as if written at ``at``
    return taken


def served(requests: list[tuple[int, float]]) -> Telemetry:
    """An endpoint's counters after ``requests`` (status, seconds) on the scoring route."""
    telemetry = Telemetry([SCORING_ROUTE], lambda: {"invalid_rows": 0, "logs": {}})
    for status, seconds in requests:
        telemetry.request(SCORING_ROUTE, status, seconds)
    return telemetry


def verdicts(slo: Slo, snapshots: list[dict]) -> dict[EndpointCheck, object]:
    return {v.check: v for v in judge_slo(slo, summarise(snapshots, NOW - WINDOW, NOW))}


def test_a_p99_above_the_latency_objective_fails_with_the_observed_latency_and_the_objective():
    telemetry = served([(200, 0.003)] * 200)  # every request in the 2.5-5 ms bucket
    snapshots = [snapshot(telemetry, NOW - 60)]

    failed = verdicts(Slo(latency_p99_ms=2, min_requests=100), snapshots)[EndpointCheck.latency_slo]
    assert not failed.passed and failed.threshold == 2 and failed.requests == 200
    assert 2.5 <= failed.observed <= 5
    assert "above the objective 2 ms" in failed.message

    met = verdicts(Slo(latency_p99_ms=10, min_requests=100), snapshots)[EndpointCheck.latency_slo]
    assert met.passed and met.observed == failed.observed and "within the objective 10 ms" in met.message


def test_the_error_rate_counts_5xx_over_every_scoring_request_but_not_the_callers_400s_and_408s():
    requests = [(200, 0.001)] * 180 + [(400, 0.001)] * 10 + [(500, 0.001)] * 4 + [(503, 0.001)] * 2
    requests += [(408, 0.001)] * 4  # a client too slow to send its request: the endpoint gives no other 408
    telemetry = served(requests)
    snapshots = [snapshot(telemetry, NOW - 30)]

    verdict = verdicts(Slo(max_error_rate=0.02, min_requests=100), snapshots)[EndpointCheck.error_rate_slo]
    assert verdict.requests == 200 and verdict.observed == pytest.approx(6 / 200)
    assert not verdict.passed and verdict.threshold == 0.02
    assert verdicts(Slo(max_error_rate=0.03, min_requests=100), snapshots)[EndpointCheck.error_rate_slo].passed
    assert failed_requests({"200": 5, "400": 3, "404": 1, "none": 2, "408": 1, "502": 2}) == 2


def test_only_the_objectives_the_spec_sets_are_judged():
    snapshots = [snapshot(served([(200, 0.001)] * 100), NOW)]
    assert set(verdicts(Slo(max_error_rate=0.01), snapshots)) == {EndpointCheck.error_rate_slo}
    both = verdicts(Slo(latency_p99_ms=5, max_error_rate=0.01), snapshots)
    assert set(both) == {EndpointCheck.latency_slo, EndpointCheck.error_rate_slo}


def test_traffic_before_the_window_is_not_judged():
    telemetry = served([(500, 2.0)] * 300)  # slow failures, before the window began
    before = snapshot(telemetry, NOW - WINDOW - 60)
    for _ in range(150):
        telemetry.request(SCORING_ROUTE, 200, 0.0004)
    verdict = verdicts(Slo(latency_p99_ms=1, max_error_rate=0.01), [before, snapshot(telemetry, NOW - 5)])
    assert verdict[EndpointCheck.latency_slo].passed and verdict[EndpointCheck.latency_slo].requests == 150
    assert verdict[EndpointCheck.error_rate_slo].observed == 0


def test_fewer_requests_than_min_requests_pass_saying_there_is_no_verdict():
    snapshots = [snapshot(served([(500, 3.0)] * 20), NOW)]
    verdict = verdicts(Slo(latency_p99_ms=1, max_error_rate=0.01, min_requests=100), snapshots)
    for check in (EndpointCheck.latency_slo, EndpointCheck.error_rate_slo):
        assert verdict[check].passed and not verdict[check].judged
        assert (
            "no verdict: 20 scoring request(s)" in verdict[check].message and "min_requests" in verdict[check].message
        )
    assert verdict[EndpointCheck.error_rate_slo].observed == 1.0  # observed all the same, for the UI


def test_no_snapshot_in_the_window_is_no_request_and_no_verdict():
    (verdict,) = judge_slo(Slo(latency_p99_ms=1), summarise([], NOW - WINDOW, NOW))
    assert verdict.passed and verdict.requests == 0 and verdict.observed is None


PROMOTED = NOW - 300  # v3 became champion five minutes ago, within the 15-minute window
SLOW, FAST = (200, 0.003), (200, 0.0004)  # about 3 ms, and under half a millisecond


def history(before: list[tuple[int, float]], after: list[tuple[int, float]]) -> list[dict]:
    """One endpoint's snapshots: before the window, just before the promotion, and now; ``before`` is the traffic
    v2 answered in the window until the promotion, ``after`` v3's since."""
    telemetry = served([])
    snapshots = [snapshot(telemetry, NOW - WINDOW - 60)]
    for status, seconds in before:
        telemetry.request(SCORING_ROUTE, status, seconds)
    snapshots.append(snapshot(telemetry, PROMOTED - 1))
    for status, seconds in after:
        telemetry.request(SCORING_ROUTE, status, seconds)
    return [*snapshots, snapshot(telemetry, NOW - 5)]


def decide(snapshots: list[dict], rollback: bool = True, promoted: float | None = PROMOTED, target: str | None = "2"):
    slo = Slo(latency_p99_ms=1, min_requests=100, rollback=rollback)
    verdicts = judge_slo(slo, summarise(snapshots, NOW - WINDOW, NOW))
    return rollback_decision(slo, snapshots, verdicts, "3", None if promoted is None else iso(promoted), target)


def iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="milliseconds")


def test_an_objective_the_champion_s_own_traffic_misses_rolls_back_to_the_previous_one():
    decision = decide(history([FAST] * 300, [SLOW] * 150))
    assert decision.target == "2"
    assert decision.reason.startswith("latency_slo failed since v3 was promoted") and "back to v2" in decision.reason


def test_a_window_that_began_after_the_promotion_is_the_champion_s_own():
    snapshots = history([], [SLOW] * 150)
    assert decide(snapshots, promoted=NOW - WINDOW - 120).target == "2"


def test_a_miss_of_the_version_before_does_not_roll_the_champion_back():
    decision = decide(history([SLOW] * 300, [FAST] * 150))  # the window fails on v2's part
    assert decision.target is None and "its own 150 requests meet the objectives" in decision.reason

    decision = decide(history([SLOW] * 300, [SLOW] * 20))
    assert decision.target is None and "no rollback yet: 20 scoring request(s)" in decision.reason


@pytest.mark.parametrize(
    ("settings", "why"),
    [
        ({"rollback": False}, "monitoring.slo.rollback is false"),
        ({"target": None}, "v3 is the first champion"),
        ({"promoted": None}, "does not say when v3 was promoted"),
    ],
)
def test_a_failed_objective_does_not_roll_back_and_says_why(settings, why):
    decision = decide(history([], [SLOW] * 150), **settings)
    assert decision.target is None and why in decision.reason


def test_met_objectives_never_roll_back():
    decision = decide(history([FAST] * 300, [FAST] * 150))
    assert decision.target is None and decision.reason == "every objective met"


def test_the_drift_report_shows_the_endpoints_figures_since_its_windows_first_row():
    store = MemoryArtifactStore()
    telemetry = served([(200, 0.003)] * 50)  # before the window: not counted
    store.write_bytes(
        f"p/inference_log/telemetry-{int((NOW - 600) * 1e9):020d}-7.json", orjson.dumps(snapshot(telemetry, NOW - 600))
    )
    for status in [200] * 95 + [503] * 5:
        telemetry.request(SCORING_ROUTE, status, 0.0004)
    store.write_bytes(
        f"p/inference_log/telemetry-{int((NOW - 5) * 1e9):020d}-7.json", orjson.dumps(snapshot(telemetry, NOW - 5))
    )
    window = pa.table({"timestamp": pa.array([int((NOW - 300) * 1000)] * 3, pa.timestamp("ms", tz="UTC"))})

    figures = served_figures(store, "p/inference_log", window, NOW)
    assert figures["requests"] == 100 and figures["failed_share"] == pytest.approx(0.05)
    assert 0.25 <= figures["latency_p50_ms"] <= 0.5 and 0.25 <= figures["latency_p99_ms"] <= 0.5
    assert "100 scoring requests, 5.00% failed on its side" in served_markdown(figures)
    assert served_figures(store, "p/inference_log", window.slice(0, 0), NOW) is None
