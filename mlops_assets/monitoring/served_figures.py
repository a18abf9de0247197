"""What the endpoint's own counters and telemetry say of a window's time: requests, failures, latency."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mlops_assets.contracts import ArtifactStore


def requests_since(now: dict | None, before: dict | None) -> tuple[int, int] | None:
    """(accepted, rejected) scoring requests between two readings of the endpoint's counters; an endpoint
    that restarted meanwhile counts from zero. ``None`` when the endpoint could not be asked."""
    if now is None:
        return None
    restarted = before is None or any(now[k] < before.get(k, 0) for k in ("accepted", "rejected"))
    base = {"accepted": 0, "rejected": 0} if restarted else before
    return now["accepted"] - base["accepted"], now["rejected"] - base["rejected"]


def served_figures(store: ArtifactStore, prefix: str, window: pa.Table, now: float) -> dict[str, Any] | None:
    """The endpoint's scoring figures (its telemetry snapshots) from the window's first logged row until
    ``now``: requests, the share failed on its side (5xx) and the p50 and p99 latency, which the
    report shows beside the drift of the same traffic. ``None`` when the window has no timestamp."""
    from mlops_assets.monitoring.slo import failed_requests
    from mlops_assets.serving.telemetry import stored_snapshots, summarise

    if "timestamp" not in window.column_names or window.num_rows == 0:
        return None
    start = pc.min(window.column("timestamp")).as_py().timestamp()
    summary = summarise(stored_snapshots(store, prefix, start), start, now)
    requests = summary["requests"]
    return {
        "since": dt.datetime.fromtimestamp(start, dt.UTC).isoformat(timespec="seconds"),
        "requests": requests,
        "failed_share": failed_requests(summary["requests_by_status"]) / requests if requests else None,
        **{f"latency_{q}_ms": _ms(summary[f"latency_{q}_s"]) for q in ("p50", "p99")},
    }


def served_markdown(figures: dict[str, Any] | None) -> str:
    """One line of the report: what the endpoint's telemetry says of the window's time."""
    if figures is None:
        return ""
    if not figures["requests"]:
        return f"\n\nEndpoint since {figures['since']}: no scoring request in its telemetry snapshots yet."
    return (
        f"\n\nEndpoint since {figures['since']}: {figures['requests']} scoring requests, "
        f"{figures['failed_share']:.2%} failed on its side (5xx), latency p50 {figures['latency_p50_ms']:.3g} ms, "
        f"p99 {figures['latency_p99_ms']:.3g} ms."
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000
