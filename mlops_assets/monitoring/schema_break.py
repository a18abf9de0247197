"""The schema_break check's verdict: the share of scoring requests the endpoint rejected (400: a missing column,
an unseen category, a value out of bounds) over the window ending now, against ``monitoring.max_rejected_share``,
naming the columns and rules that rejected them.

A rejected request is never logged, so no drift window fills and no drift report runs while every request is
rejected: this check, on the endpoint's telemetry, is how such a break is seen. Pure: the figures come in as
``serving.telemetry.summarise`` made them from the endpoint's snapshots; the asset check reads the snapshots,
reports the verdict and alerts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REPORTED_CAUSES = 5  # named in the verdict's message (and so the alert); the metadata holds every one


@dataclass(frozen=True)
class RejectionCause:
    """Requests rejected for one column and rule over the window, with one value that broke it."""

    column: str
    rule: str
    requests: int
    example: str | None  # as the 400 showed it; None: no value (a missing column)

    def describe(self, total: int) -> str:
        """``sex: isin ['1', '2'] got '3': 30 of 30 requests``."""
        got = f" got {self.example}" if self.example is not None else ""
        return f"{self.column}: {self.rule}{got}: {self.requests:,} of {total:,} requests"


@dataclass(frozen=True)
class SchemaBreakVerdict:
    passed: bool
    observed: float | None  # rejected share of scoring requests; None without scoring requests
    threshold: float
    requests: int  # scoring requests answered in the window
    rejected: int
    min_requests: int
    causes: list[RejectionCause]  # most requests first
    window_start: float  # seconds since the epoch
    window_end: float
    message: str


def judge_schema_break(settings, max_rejected_share: float, summary: dict[str, Any]) -> SchemaBreakVerdict:
    """Fail when more than ``max_rejected_share`` of the window's scoring requests were rejected; ``settings`` is
    the spec's ``monitoring.schema_break``, ``summary`` the window's ``telemetry.summarise``. With fewer than
    ``settings.min_requests`` scoring requests the check passes, saying there is no verdict yet."""
    requests, rejected = summary["requests"], summary["rejected_requests"]
    causes = [RejectionCause(column, rule, n, example) for column, rule, n, example in summary["rejections"]]
    observed = rejected / requests if requests else None
    minutes = f"{settings.window_minutes:g} min"
    threshold = f"monitoring.max_rejected_share {max_rejected_share:.2%}"
    if requests < settings.min_requests:
        passed = True
        message = (
            f"no verdict: {requests} scoring request(s) in the last {minutes} ({rejected} rejected), a verdict needs "
            f"{settings.min_requests} (monitoring.schema_break.min_requests)"
        )
    else:
        passed = observed <= max_rejected_share
        side = "within" if passed else "above"
        message = (
            f"{rejected:,} of {requests:,} scoring requests rejected ({observed:.2%}) over the last {minutes}: "
            f"{side} {threshold}"
        )
    if causes:
        named = "; ".join(cause.describe(requests) for cause in causes[:REPORTED_CAUSES])
        more = f"; and {len(causes) - REPORTED_CAUSES} more" if len(causes) > REPORTED_CAUSES else ""
        message += f"; {named}{more}"
    return SchemaBreakVerdict(
        passed,
        observed,
        max_rejected_share,
        requests,
        rejected,
        settings.min_requests,
        causes,
        summary["start"],
        summary["end"],
        message,
    )
