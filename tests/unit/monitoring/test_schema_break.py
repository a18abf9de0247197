"""The schema_break check's verdict on a window's telemetry: the rejected share against
``monitoring.max_rejected_share``, the columns and rules named, and no verdict on too few requests."""

import pytest

from mlops_assets.monitoring.schema_break import REPORTED_CAUSES, judge_schema_break
from mlops_assets.serving.telemetry import summarise
from mlops_assets.spec.operations import Monitoring, SchemaBreak

SETTINGS = SchemaBreak(min_requests=20)
SHARE = Monitoring().max_rejected_share  # 1%
ISIN = "isin ['salaried', 'self-employed']"


def snapshot(instance: str, time: float, ok: int, rejections: list | None = None) -> dict:
    """A telemetry snapshot as the endpoint writes it; ``rejections=None``: one written before they were counted."""
    rejected = sum(n for _, _, n, _ in rejections or [])
    found = {
        "time": time,
        "instance": instance,
        "requests": [["/invocations", "200", ok], ["/invocations", "400", rejected]],
        "latency_counts": [0] * 17,
        "latency_sum": 0.0,
        "rows_scored": [["1", "champion", ok]],
        "invalid_rows": 0,
        "logs": {},
    }
    if rejections is not None:
        found |= {"rejected_requests": rejected, "rejections": rejections}
    return found


def judged(snapshots: list[dict], share: float = SHARE):
    return judge_schema_break(SETTINGS, share, summarise(snapshots, 100, 200))


def test_a_window_of_rejected_requests_fails_naming_the_column_rule_and_count():
    snapshots = [
        snapshot("a", 90, 40, [["employment", ISIN, 5, "'gig'"]]),  # the baseline, before the window
        snapshot("a", 190, 40, [["employment", ISIN, 1_005, "'gig'"]]),
    ]

    verdict = judged(snapshots)

    assert not verdict.passed and (verdict.requests, verdict.rejected) == (1_000, 1_000)
    assert verdict.observed == 1.0 and verdict.threshold == SHARE
    assert [(c.column, c.rule, c.requests, c.example) for c in verdict.causes] == [("employment", ISIN, 1_000, "'gig'")]
    assert verdict.message == (
        "1,000 of 1,000 scoring requests rejected (100.00%) over the last 15 min: above "
        "monitoring.max_rejected_share 1.00%; employment: isin ['salaried', 'self-employed'] got 'gig': "
        "1,000 of 1,000 requests"
    )


def test_every_process_and_replica_adds_its_own_rejections_and_the_most_frequent_come_first():
    snapshots = [
        snapshot("a", 150, 100, [["income", "missing from the request", 3, None]]),
        snapshot("b", 160, 100, [["income", "missing from the request", 4, None], ["age", "ge 18", 9, "17.0"]]),
    ]

    verdict = judged(snapshots)

    assert not verdict.passed and (verdict.requests, verdict.rejected) == (216, 16)
    assert verdict.observed == pytest.approx(16 / 216)
    assert [(c.column, c.requests) for c in verdict.causes] == [("age", 9), ("income", 7)]
    assert "income: missing from the request: 7 of 216 requests" in verdict.message


def test_a_share_within_the_threshold_passes_and_still_names_what_was_rejected():
    verdict = judged([snapshot("a", 150, 299, [["age", "ge 18", 1, "17.0"]])])

    assert verdict.passed and verdict.observed == pytest.approx(1 / 300)
    assert verdict.message.startswith("1 of 300 scoring requests rejected (0.33%) over the last 15 min: within")
    assert verdict.message.endswith("age: ge 18 got 17.0: 1 of 300 requests")


def test_too_few_requests_give_no_verdict_and_pass():
    verdict = judged([snapshot("a", 150, 0, [["age", "ge 18", 19, "17.0"]])])

    assert verdict.passed and verdict.observed == 1.0
    assert verdict.message.startswith("no verdict: 19 scoring request(s) in the last 15 min (19 rejected)")


def test_snapshots_written_before_rejections_were_counted_count_none():
    verdict = judged([snapshot("a", 150, 300)])

    assert verdict.passed and (verdict.rejected, verdict.causes, verdict.observed) == (0, [], 0.0)


def test_the_message_names_the_most_frequent_causes_and_counts_the_rest():
    causes = [[f"c{i}", "not nullable", 10 - i, None] for i in range(REPORTED_CAUSES + 2)]

    verdict = judged([snapshot("a", 150, 0, causes)])

    assert len(verdict.causes) == REPORTED_CAUSES + 2
    assert "c4: not nullable" in verdict.message and "c5" not in verdict.message
    assert verdict.message.endswith("; and 2 more")
