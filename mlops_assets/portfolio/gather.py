"""The portfolio: one row per pipeline of what a person asks first about a fleet of models, gathered through the
contracts (``portfolio_report`` renders the rows).

Per pipeline: the champion and how long it has served, the last training and what triggered it, the newest gate
verdict, the newest drift report (its status, the realised and the estimated online metric), the SLO checks, a
challenger waiting for a person's approval, whether the endpoint answers, and the schema-break check.

Gathering reads the newest state only, so a hundred pipelines with long histories stay cheap: the champion through
the registry, the audit trail newest record first until the last training, gate and deployment decision are found
(``TRAIL_DEPTH`` records at most, never the whole chain), the one newest drift report. The endpoints are all asked
at once, with one deadline for all of them: endpoints that do not answer cost the deadline once, not a timeout
each. The endpoint checks' latest evaluations (``shown_checks``) live in the Dagster instance: the asset reads them
and hands them in.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mlops_assets.contracts import ArtifactStore, EndpointDeployer, ModelRegistry
from mlops_assets.data.locations import drift_report_time, drift_reports
from mlops_assets.governance.audit import newest_records
from mlops_assets.monitoring.slo import objectives
from mlops_assets.naming import CHAMPION, DecisionAction, EndpointCheck, TrailEvent

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec

log = logging.getLogger(__name__)

TRAIL_DEPTH = 50  # newest trail records read per pipeline at most; a run writes about eight
PROBE_DEADLINE_S = 3.0  # for every endpoint together; one that answers later is reported as not answering
MAX_PROBES = 128  # endpoints asked at once (a thread each: they wait on the network, not the CPU)
READERS = 8  # pipelines whose registry, trail and reports are read at once


@dataclass(frozen=True)
class Check:
    """The latest evaluation of one endpoint check: ``passed`` is ``None`` when it never ran."""

    name: str
    passed: bool | None = None
    at: dt.datetime | None = None


@dataclass(frozen=True)
class Performance:
    """An online metric from a drift report: realised on labelled predictions, or estimated without labels."""

    metric: str
    value: float
    low: float
    high: float
    floor: float
    decayed: bool


@dataclass(frozen=True)
class Drift:
    status: str
    at: dt.datetime | None
    drifted_features: list[str]
    realised: Performance | None
    estimated: Performance | None


@dataclass(frozen=True)
class Training:
    version: str
    at: dt.datetime
    trigger: str


@dataclass(frozen=True)
class Gate:
    version: str
    passed: bool
    reasons: list[str]


@dataclass(frozen=True)
class Endpoint:
    up: bool | None  # None: no answer within the deadline, or the deployer could not say
    url: str | None = None
    note: str = ""


@dataclass(frozen=True)
class PortfolioRow:
    pipeline: str
    champion: str | None = None
    champion_since: dt.datetime | None = None
    training: Training | None = None
    gate: Gate | None = None
    drift: Drift | None = None
    slo: list[Check] | None = None  # None: the spec declares no SLO
    awaiting_approval: str | None = None  # the gated challenger a person has to approve
    endpoint: Endpoint = Endpoint(None, note="not asked")
    schema_break: Check | None = None  # the share of rejected requests; None: not read
    problems: list[str] = field(default_factory=list)  # state that could not be read, and why


# -- gathering ---------------------------------------------------------------------------------------------------


def gather(
    specs: Sequence[PipelineSpec],
    store: ArtifactStore,
    registry: ModelRegistry,
    deployer: EndpointDeployer,
    slo: Mapping[str, Mapping[str, Check]],
    deadline_s: float = PROBE_DEADLINE_S,
) -> list[PortfolioRow]:
    """One row per spec, in the specs' order. ``slo``: each pipeline's endpoint checks (``shown_checks``) by
    name, as last evaluated.

    The endpoints are asked first and answer while the rest is read; whatever has not answered ``deadline_s``
    after the start is reported as not answering. A pipeline whose state cannot be read gets a row that says
    why: one broken pipeline does not hide the others."""
    started = time.monotonic()
    names = [spec.name for spec in specs]
    probes = ThreadPoolExecutor(max_workers=max(1, min(len(names), MAX_PROBES)), thread_name_prefix="portfolio-ping")
    asked = {name: probes.submit(deployer.running_url, name) for name in names}
    try:
        with ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="portfolio-read") as readers:
            rows = list(readers.map(lambda spec: pipeline_row(spec, store, registry, slo.get(spec.name, {})), specs))
        wait(asked.values(), timeout=max(0.0, deadline_s - (time.monotonic() - started)))
    finally:
        probes.shutdown(wait=False, cancel_futures=True)  # a probe still waiting ends with its own timeout
    return [replace(row, endpoint=_endpoint(asked[row.pipeline], deadline_s)) for row in rows]


def _endpoint(probe: Future, deadline_s: float) -> Endpoint:
    if not probe.done():
        return Endpoint(None, note=f"no answer within {deadline_s:g} s")
    if probe.exception() is not None:
        return Endpoint(None, note=f"the deployer could not say: {probe.exception()}")
    url = probe.result()
    return Endpoint(url is not None, url)


def pipeline_row(
    spec: PipelineSpec, store: ArtifactStore, registry: ModelRegistry, checks: Mapping[str, Check]
) -> PortfolioRow:
    """What the registry, the audit trail and the newest drift report say of one pipeline."""
    try:
        champion = registry.by_alias(spec.name, CHAMPION)
        trail = trail_summary(newest_records(store, spec.name, TRAIL_DEPTH))
        since = champion.tags.get("deployed_at") if champion else None
        waiting = trail.awaiting_approval
        return PortfolioRow(
            spec.name,
            champion=champion.version if champion else None,
            champion_since=_time(since) if since else None,
            training=trail.training,
            gate=trail.gate,
            drift=newest_drift(store, spec.name),
            slo=slo_status(spec, checks),
            schema_break=checks.get(EndpointCheck.schema_break, Check(EndpointCheck.schema_break)),
            awaiting_approval=None if champion and waiting == champion.version else waiting,
        )
    except Exception as exc:  # a registry or store that fails for one pipeline leaves the others readable
        log.warning("portfolio: the state of %s could not be read", spec.name, exc_info=True)
        return PortfolioRow(spec.name, problems=[f"its state could not be read: {type(exc).__name__}: {exc}"])


@dataclass(frozen=True)
class TrailSummary:
    training: Training | None = None
    gate: Gate | None = None
    awaiting_approval: str | None = None


def trail_summary(records: Iterator[dict[str, Any]]) -> TrailSummary:
    """The newest registration and gate verdict, and a challenger waiting for approval: the newest deployment
    decision says it waits, and no approval of it came since. Stops reading once all three are known."""
    training = gate = waiting = None
    decided, approved = False, set()
    for record in records:
        kind = record.get("kind")
        if kind == TrailEvent.registration and training is None:
            training = Training(record["model_version"], _time(record["time"]), record.get("trigger") or "unknown")
        elif kind == TrailEvent.gate and gate is None:
            gate = Gate(record["model_version"], bool(record["passed"]), list(record.get("reasons") or []))
        elif kind == TrailEvent.approval:
            approved.add(record.get("model_version"))
        elif kind == TrailEvent.decision and not decided:
            decided = True
            version = record.get("challenger_version")
            if record.get("action") == DecisionAction.awaiting_approval and version not in approved:
                waiting = version
        if training is not None and gate is not None and decided:
            break
    return TrailSummary(training, gate, waiting)


def newest_drift(store: ArtifactStore, pipeline: str) -> Drift | None:
    """The newest drift report's verdict and online metrics; ``None`` before the first report."""
    reports = drift_reports(store, pipeline)
    if not reports:
        return None
    report = json.loads(store.read_bytes(reports[-1]))
    return Drift(
        report.get("status", "unknown"),
        drift_report_time(reports[-1]),
        list(report.get("drifted_features") or []),
        _performance(report.get("performance")),
        _performance(report.get("estimated_performance")),
    )


def _performance(found: dict[str, Any] | None) -> Performance | None:
    if not found:
        return None
    return Performance(
        found["metric"], found["value"], found["low"], found["high"], found["floor"], bool(found["decayed"])
    )


def shown_checks(spec: PipelineSpec) -> list[EndpointCheck]:
    """The endpoint checks whose latest evaluation the portfolio shows: the SLO checks the spec declares and the
    schema-break check, which every deployed endpoint has."""
    return [*objectives(spec.monitoring.slo), EndpointCheck.schema_break]


def slo_status(spec: PipelineSpec, evaluated: Mapping[str, Check]) -> list[Check] | None:
    declared = objectives(spec.monitoring.slo)
    return [evaluated.get(check, Check(check)) for check in declared] if declared else None


def _time(text: str) -> dt.datetime:
    at = dt.datetime.fromisoformat(text)
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at
