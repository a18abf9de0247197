"""What one scenario of the loop bench came to, judged against the goals, as a row of its table."""

from __future__ import annotations

from dataclasses import dataclass, field

from loop_world import Scenario

BETTER_WITHIN_S = 180


@dataclass
class Promotion:
    version: str
    replaced: str
    at: float
    event: int
    auc: tuple[float, float] = (float("nan"), float("nan"))  # replaced, promoted
    gain: tuple[float, float, float] = (float("nan"), float("nan"), float("nan"))

    @property
    def better(self) -> bool:
        return self.gain[1] > 0


@dataclass
class Outcome:
    retrainings: list[int] = field(default_factory=list)  # per event, then the next-window check
    retraining_runs: int = 0  # automatic retraining runs, those that trained nothing (a copy, a failure) included
    at_once: int = 0
    exact_copies: int = 0
    near_copies: int = 0
    promotions: list[Promotion] = field(default_factory=list)
    first_auc: float = float("nan")  # the first champion on the last event's traffic
    final_gain: tuple[float, float, float] | None = None  # the final champion over the first, same rows
    next_report: str = "not reached"
    alerts: dict[str, int] = field(default_factory=dict)
    alert_s: float | None = None  # from the break's first request to its schema_break alert
    alert_within_s: float = 0.0  # the goal: one schema_break check interval (and two sensor ticks to run it)
    better_s: float | None = None  # from the scenario's first request to a better champion serving
    better_after_event_s: float | None = None  # from the first request of the event it answered
    refused_rows: int = 0
    stopped: str = ""  # why the scenario did not run to its end: TIMEOUT or ERROR, and what


def goals(scenario: Scenario, outcome: Outcome, interval: float) -> list[str]:
    """The goals this scenario missed."""
    missed = [outcome.stopped] if outcome.stopped else []
    events = outcome.retrainings[: len(scenario.events)]
    if max(events, default=0) > 1:
        missed.append(f"{max(events)} retrainings for one event")
    if outcome.exact_copies or outcome.near_copies:
        missed.append("copies")
    not_better = [p.version for p in outcome.promotions if not p.better]
    if not_better:
        missed.append(f"promoted without being better: v{', v'.join(not_better)}")
    if scenario.recovers_flip and not (outcome.final_gain and outcome.final_gain[1] > 0):
        missed.append("flip not recovered")
    if scenario.breaks_feed and (outcome.alert_s is None or outcome.alert_s > outcome.alert_within_s):
        missed.append("break not alerted in time")
    late = outcome.better_after_event_s is None or outcome.better_after_event_s > BETTER_WITHIN_S
    if scenario.expect_better and late:
        missed.append(f"no better champion within {BETTER_WITHIN_S} s of its event")
    return missed


def row(scenario: Scenario, outcome: Outcome, interval: float) -> str:
    per_event = "+".join(str(n) for n in outcome.retrainings[: len(scenario.events)])
    check = outcome.retrainings[len(scenario.events) :]
    after = f"; {check[0]} after" if check and check[0] else ""
    retrained = f"{sum(outcome.retrainings)} ({per_event}{after}) of {outcome.retraining_runs} run(s)"
    promoted = "; ".join(
        f"v{p.version} over v{p.replaced}: {p.auc[0]:.4f} -> {p.auc[1]:.4f} ({p.gain[0]:+.4f}, CI "
        f"{p.gain[1]:+.4f} to {p.gain[2]:+.4f}) {'better' if p.better else 'NOT better'}"
        for p in outcome.promotions
    )
    alerts = ", ".join(f"{event} {n}" for event, n in sorted(outcome.alerts.items())) or "none"
    if outcome.alert_s is not None:
        alerts += f" (first after {outcome.alert_s:.0f} s)"
    seconds = "" if outcome.better_s is None else f"{outcome.better_s:.0f} ({outcome.better_after_event_s:.0f})"
    missed = goals(scenario, outcome, interval)
    refused = f" ({outcome.refused_rows:,} rows refused)" if outcome.refused_rows else ""
    return (
        f"| {scenario.name}{refused} | {retrained} | {outcome.at_once} | {outcome.exact_copies} / "
        f"{outcome.near_copies} | {len(outcome.promotions)} | {outcome.first_auc:.4f}"
        f"{'; ' + promoted if promoted else ''} | {outcome.next_report} | {alerts} | {seconds} | "
        f"{'; '.join(missed) or 'all met'} |"
    )
