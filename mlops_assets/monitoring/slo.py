"""The serving objectives (``monitoring.slo``) judged on the endpoint's telemetry over the window ending now:
the 99th percentile of scoring latency, and the share of scoring requests that failed on the endpoint's side.

Pure: the figures come in as ``serving.telemetry.summarise`` made them from the endpoint's snapshots; the asset
checks read the snapshots and report these verdicts, and ``rollback_decision`` says whether a failed one moves
``champion`` back, so the sensor only has to read the check's metadata.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from mlops_assets.naming import EndpointCheck

DEADLINE_PASSED = "408"  # the endpoint gave up on a request whose deadline passed: its failure, not the caller's


@dataclass(frozen=True)
class SloVerdict:
    """One objective over one window: what was observed, against what, and why it passed or failed."""

    check: EndpointCheck
    passed: bool
    observed: float | None  # p99 latency in ms, or the failed share; None without scoring requests
    threshold: float
    requests: int  # scoring requests in the window
    min_requests: int
    window_start: float  # seconds since the epoch
    window_end: float
    message: str

    @property
    def judged(self) -> bool:
        """Whether the window had the requests a verdict needs (``min_requests``)."""
        return self.requests >= self.min_requests


def failed_requests(requests_by_status: dict[str, int]) -> int:
    """Scoring requests that failed on the endpoint's side: a 5xx, or a 408 when a request's deadline passed.
    A 400 (a bad row) is the caller's, and a request whose client went away (``none``) has no answer."""
    return sum(
        n
        for status, n in requests_by_status.items()
        if status == DEADLINE_PASSED or (status.isdigit() and int(status) >= 500)
    )


def judge_slo(slo, summary: dict[str, Any]) -> list[SloVerdict]:
    """A verdict per objective ``slo`` (the spec's ``monitoring.slo``) sets, on ``summary`` (a window's
    ``telemetry.summarise``). Fewer than ``min_requests`` scoring requests: each passes, saying so."""
    requests = summary["requests"]
    start, end = summary["start"], summary["end"]
    minutes = f"{slo.window_minutes:g} min"
    objectives = []
    if slo.latency_p99_ms is not None:
        p99 = summary["latency_p99_s"]
        observed = None if p99 is None else p99 * 1000
        what = "p99 scoring latency" if observed is None else f"p99 scoring latency {observed:.3g} ms"
        objectives.append((EndpointCheck.latency_slo, observed, slo.latency_p99_ms, what, f"{slo.latency_p99_ms:g} ms"))
    if slo.max_error_rate is not None:
        failed = failed_requests(summary["requests_by_status"])
        observed = failed / requests if requests else None
        what = f"{failed} failed scoring request(s) (5xx, 408)"
        if observed is not None:
            what += f", {observed:.2%}"
        objectives.append(
            (EndpointCheck.error_rate_slo, observed, slo.max_error_rate, what, f"{slo.max_error_rate:.2%}")
        )
    verdicts = []
    for check, observed, threshold, what, objective in objectives:
        if requests < slo.min_requests:
            passed = True
            message = (
                f"no verdict: {requests} scoring request(s) in the last {minutes}, a verdict needs "
                f"{slo.min_requests} (monitoring.slo.min_requests)"
            )
        else:
            passed = observed is not None and observed <= threshold
            side = "within" if passed else "above"
            message = f"{what} over the last {minutes} ({requests} requests): {side} the objective {objective}"
        verdicts.append(SloVerdict(check, passed, observed, threshold, requests, slo.min_requests, start, end, message))
    return verdicts


@dataclass(frozen=True)
class RollbackDecision:
    """Whether a failed objective moves ``champion`` back, to which version, and why (or why not)."""

    target: str | None  # the version to roll back to; None: no rollback
    reason: str


def rollback_decision(
    enabled: bool, verdicts: list[SloVerdict], champion: str | None, promoted_at: str | None, target: str | None
) -> RollbackDecision:
    """Roll back when the spec asks for it (``monitoring.slo.rollback``), an objective failed, the failing
    window began after ``champion`` was promoted (``promoted_at``, ISO time: the new version is what broke it,
    not the traffic before it) and there is a previous champion (``target``) to return to."""
    failed = [v for v in verdicts if not v.passed]
    if not failed:
        return RollbackDecision(None, "every objective met")
    if not enabled:
        return RollbackDecision(None, "no rollback: monitoring.slo.rollback is false")
    if champion is None:
        return RollbackDecision(None, "no rollback: there is no champion")
    if target is None:
        return RollbackDecision(None, f"no rollback: v{champion} is the first champion, there is none to return to")
    window_start = dt.datetime.fromtimestamp(failed[0].window_start, dt.UTC)
    began = window_start.isoformat(timespec="seconds")
    if promoted_at is None:
        return RollbackDecision(None, f"no rollback: the alias history does not say when v{champion} was promoted")
    if window_start < dt.datetime.fromisoformat(promoted_at):
        return RollbackDecision(
            None,
            f"no rollback: the failing window began at {began}, before v{champion} was promoted at {promoted_at}, "
            "so it also measures the version before it",
        )
    names = ", ".join(v.check for v in failed)
    return RollbackDecision(
        target,
        f"{names} failed for v{champion} in the window from {began}, after its promotion at {promoted_at}: "
        f"back to v{target}",
    )
