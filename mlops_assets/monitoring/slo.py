"""The serving objectives (``monitoring.slo``) judged on the endpoint's telemetry over the window ending now:
the 99th percentile of scoring latency, and the share of scoring requests that failed on the endpoint's side.

Both count what the endpoint controls. A request whose client never finished sending its head or body (a 408
past the read deadline, or a client gone mid-body) is the client's: the telemetry counts it apart and leaves it
out of the scoring requests, their latency and so these verdicts (``telemetry.summarise``), and latency runs from
the moment a body is whole. Clients that stall can neither fail an objective nor roll back a champion that
answered every request in time: a rollback needs requests the endpoint served late or failed.

Pure: the figures come in as ``serving.telemetry.summarise`` made them from the endpoint's snapshots; the asset
checks read the snapshots and report these verdicts, and ``rollback_decision`` says whether a failed one moves
``champion`` back (only when the champion's own traffic misses it), so the sensor only reads the check's
metadata.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from mlops_assets.naming import EndpointCheck


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
    """Scoring requests that failed on the endpoint's side: a 5xx. A 400 (a bad row) is the caller's, so is a
    408 (its client did not send the request within the read deadlines: the endpoint gives no other), and a
    request whose client went away (``none``) has no answer."""
    return sum(n for status, n in requests_by_status.items() if status.isdigit() and int(status) >= 500)


def objectives(slo) -> list[EndpointCheck]:
    """The checks of the objectives ``slo`` (the spec's ``monitoring.slo``) sets: one or both; none without it."""
    if slo is None:
        return []
    return [
        check
        for check, threshold in (
            (EndpointCheck.latency_slo, slo.latency_p99_ms),
            (EndpointCheck.error_rate_slo, slo.max_error_rate),
        )
        if threshold is not None
    ]


def judge_slo(slo, summary: dict[str, Any]) -> list[SloVerdict]:
    """A verdict per objective ``slo`` (the spec's ``monitoring.slo``) sets, on ``summary`` (a window's
    ``telemetry.summarise``). Fewer than ``min_requests`` scoring requests: each passes, saying so."""
    requests = summary["requests"]
    start, end = summary["start"], summary["end"]
    minutes = f"{slo.window_minutes:g} min"
    judged = []
    if slo.latency_p99_ms is not None:
        p99 = summary["latency_p99_s"]
        observed = None if p99 is None else p99 * 1000
        what = "p99 scoring latency" if observed is None else f"p99 scoring latency {observed:.3g} ms"
        judged.append((EndpointCheck.latency_slo, observed, slo.latency_p99_ms, what, f"{slo.latency_p99_ms:g} ms"))
    if slo.max_error_rate is not None:
        failed = failed_requests(summary["requests_by_status"])
        observed = failed / requests if requests else None
        what = f"{failed} failed scoring request(s) (5xx)"
        if observed is not None:
            what += f", {observed:.2%}"
        judged.append((EndpointCheck.error_rate_slo, observed, slo.max_error_rate, what, f"{slo.max_error_rate:.2%}"))
    verdicts = []
    for check, observed, threshold, what, objective in judged:
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
    slo,
    snapshots: list[dict[str, Any]],
    verdicts: list[SloVerdict],
    champion: str | None,
    promoted_at: str | None,
    target: str | None,
) -> RollbackDecision:
    """Roll back when the spec asks for it (``monitoring.slo.rollback``), an objective failed, and it fails on
    ``champion``'s own traffic too: the window's part after its promotion (``promoted_at``, ISO time), judged
    again on the same ``snapshots`` with at least ``min_requests`` there, so that the new version is what broke
    it, not the one before. There must be a previous champion (``target``) to return to.

    The part after the promotion is resolved as finely as the snapshots are (the endpoint writes one a
    minute): its baseline is each process's last snapshot before the promotion."""
    from mlops_assets.serving.telemetry import summarise

    failed = [v for v in verdicts if not v.passed]
    if not failed:
        return RollbackDecision(None, "every objective met")
    if not slo.rollback:
        return RollbackDecision(None, "no rollback: monitoring.slo.rollback is false")
    if champion is None:
        return RollbackDecision(None, "no rollback: there is no champion")
    if target is None:
        return RollbackDecision(None, f"no rollback: v{champion} is the first champion, there is none to return to")
    if promoted_at is None:
        return RollbackDecision(None, f"no rollback: the alias history does not say when v{champion} was promoted")
    start, end = max(failed[0].window_start, dt.datetime.fromisoformat(promoted_at).timestamp()), failed[0].window_end
    own = judge_slo(slo, summarise(snapshots, start, end))
    own_failed = [v for v in own if not v.passed]
    since = f"since v{champion} was promoted at {promoted_at}"
    if own_failed:
        return RollbackDecision(target, f"{', '.join(v.check for v in own_failed)} failed {since}: back to v{target}")
    if not own[0].judged:
        return RollbackDecision(
            None, f"no rollback yet: {own[0].requests} scoring request(s) {since}, a verdict needs {slo.min_requests}"
        )
    return RollbackDecision(None, f"no rollback: {since}, its own {own[0].requests} requests meet the objectives")
