"""The portfolio: gathered through in-memory contracts, rendered as Markdown and HTML, and its sensor."""

import datetime as dt
import json
import threading
from pathlib import Path

import dagster as dg
import pytest
from pydantic import PrivateAttr

from mlops_assets.assets.portfolio import PORTFOLIO_KEY, latest_slo_checks
from mlops_assets.errors import MlopsError
from mlops_assets.governance.audit import append_event, newest_records
from mlops_assets.naming import EndpointCheck, StorePrefix, TrailEvent, asset_keys, store_key
from mlops_assets.portfolio.gather import TRAIL_DEPTH, Check, Gate, PortfolioRow, gather, trail_summary
from mlops_assets.portfolio.render import attention, render_html, render_markdown
from mlops_assets.sensors.portfolio import PORTFOLIO_CRON_ENV, build_portfolio_automation, portfolio_schedule
from mlops_assets.spec import load_spec
from mlops_assets.spec.operations import Slo
from tests.unit.fakes import MemoryArtifactStore, MemoryEndpointDeployer, MemoryModelRegistry

REPO = Path(__file__).resolve().parents[3]
BUNDLED = load_spec(REPO / "pipelines" / "breast_cancer.yaml")
SPEC = BUNDLED.model_copy(update={"monitoring": BUNDLED.monitoring.model_copy(update={"slo": None})})  # no objectives
NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


def with_slo(spec, **objectives):
    monitoring = spec.monitoring.model_copy(update={"slo": Slo(**objectives)})
    return spec.model_copy(update={"monitoring": monitoring})


def renamed(spec, name: str):
    return spec.model_copy(update={"name": name})


def drift_report(store, pipeline: str, stamp: str, **fields) -> None:
    key = store_key(pipeline, StorePrefix.drift_reports, f"{stamp}-run1.json")
    store.write_bytes(key, json.dumps({"status": "no drift", "drifted_features": [], **fields}).encode())


@pytest.fixture
def state():
    """breast_cancer with champion v1 serving, v2 trained on a drift and failed at the gate, two drift reports."""
    store, registry = MemoryArtifactStore(), MemoryModelRegistry()
    deployer = MemoryEndpointDeployer.over(registry)
    registry.register(SPEC.name, {"trigger": "manual"})
    registry.promote(SPEC.name, "1", "alice")
    deployer.deploy("spec.yaml", registry.get(SPEC.name, "1"), "log")
    registry.register(SPEC.name, {"trigger": "drift_report:abc"})
    append_event(store, SPEC.name, TrailEvent.registration, {"model_version": "2", "trigger": "drift_report:abc"})
    reasons = ["roc_auc 0.91 < champion 0.95 | by 0.04"]
    append_event(store, SPEC.name, TrailEvent.gate, {"model_version": "2", "passed": False, "reasons": reasons})
    drift_report(store, SPEC.name, "20261202T100000.000000Z", status="drifted", drifted_features=["radius"])
    realised = {"metric": "roc_auc", "value": 0.81, "low": 0.75, "high": 0.86, "rows": 300, "floor": 0.9}
    estimated = {**realised, "value": 0.93, "low": 0.91, "high": 0.95, "std": 0.01}
    drift_report(
        store,
        SPEC.name,
        "20261202T110000.000000Z",
        status="no drift",
        performance={**realised, "decayed": True},
        estimated_performance={**estimated, "decayed": False},
    )
    return store, registry, deployer


def test_a_row_holds_the_champion_its_last_training_gate_drift_and_endpoint(state):
    store, registry, deployer = state

    [row] = gather([SPEC], store, registry, deployer, {})

    assert (row.champion, row.training.version, row.training.trigger) == ("1", "2", "drift_report:abc")
    assert (row.gate.version, row.gate.passed) == ("2", False)
    assert row.drift.status == "no drift" and row.drift.at == dt.datetime(2026, 12, 2, 11, tzinfo=dt.UTC)
    assert (row.drift.realised.value, row.drift.realised.decayed) == (0.81, True)
    assert (row.drift.estimated.value, row.drift.estimated.decayed) == (0.93, False)
    assert (row.endpoint.up, row.endpoint.url) == (True, deployer.running_url(SPEC.name))
    assert row.slo is None and row.awaiting_approval is None and not row.problems


def test_the_markdown_table_shows_each_value_and_what_needs_attention(state):
    store, registry, deployer = state
    rows = gather([SPEC], store, registry, deployer, {})
    since = dt.datetime.fromisoformat(registry.get(SPEC.name, "1").tags["deployed_at"])

    markdown = render_markdown(rows, since + dt.timedelta(days=2, hours=3))

    table = [line for line in markdown.splitlines() if line.startswith(f"| {SPEC.name} |")]
    assert len(table) == 1
    assert "| v1 | 2d 3h |" in table[0]
    # a refused challenger is a decision, not an incident (the pipe cannot split the cell)
    assert "v2 not promoted, champion v1 kept: roc_auc 0.91 < champion 0.95 \\| by 0.04" in table[0]
    assert "roc_auc 0.810 [0.750, 0.860], floor 0.9 DECAYED" in table[0]
    assert "roc_auc 0.930 [0.910, 0.950], floor 0.9 |" in table[0]
    assert "| no SLO | - | up http://breast_cancer.endpoint.test |" in table[0]
    [needs] = attention(rows, since)
    assert needs.startswith(f"{SPEC.name}: realised: roc_auc 0.810")
    assert "gate" not in needs and "endpoint" not in needs and "estimated" not in needs


def test_a_first_version_refused_with_no_champion_needs_attention():
    row = PortfolioRow("p", gate=Gate("1", False, ["roc_auc 0.5 < 0.9"]))
    [needs] = attention([row], NOW)
    assert needs == "p: gate: v1 FAILED, no champion: roc_auc 0.5 < 0.9"


def test_the_html_page_escapes_every_value_from_data():
    row = PortfolioRow("p", problems=["<script>alert(1)</script> & more"])

    page = render_html([row], NOW)

    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    assert '<td class="bad">' in page


def test_a_pipeline_with_nothing_yet_says_so_and_needs_no_attention():
    store, registry = MemoryArtifactStore(), MemoryModelRegistry()

    rows = gather([SPEC], store, registry, MemoryEndpointDeployer.over(registry), {})

    assert "| breast_cancer | none | - | none recorded | - | no report | - | - | no SLO | - | not deployed |" in (
        render_markdown(rows, NOW)
    )
    assert attention(rows, NOW) == []


def test_a_champion_whose_endpoint_is_down_needs_attention(state):
    store, registry, deployer = state
    deployer.crash(SPEC.name)

    rows = gather([SPEC], store, registry, deployer, {})

    assert rows[0].endpoint.up is False
    assert "endpoint: DOWN" in attention(rows, NOW)[0]


def test_slo_checks_are_shown_as_last_evaluated_and_a_failed_one_needs_attention(state):
    store, registry, deployer = state
    spec = with_slo(SPEC, latency_p99_ms=50, max_error_rate=0.01)
    only_latency = renamed(with_slo(SPEC, latency_p99_ms=50), "other")
    evaluated = {SPEC.name: {EndpointCheck.latency_slo: Check(EndpointCheck.latency_slo, True, NOW)}}
    evaluated["other"] = {EndpointCheck.latency_slo: Check(EndpointCheck.latency_slo, False, NOW)}

    rows = gather([spec, only_latency], store, registry, deployer, evaluated)

    assert [c.passed for c in rows[0].slo] == [True, None]
    markdown = render_markdown(rows, NOW)
    assert "latency_slo ok, error_rate_slo not checked yet" in markdown
    assert "| latency_slo FAILED |" in markdown
    assert any(line.startswith("other: ") and "SLO: latency_slo FAILED" in line for line in attention(rows, NOW))


def test_a_gated_challenger_waits_for_approval_until_a_person_approves_it(state):
    store, registry, deployer = state
    append_event(store, SPEC.name, TrailEvent.gate, {"model_version": "3", "passed": True, "reasons": []})
    waiting = {"action": "awaiting approval", "model_version": "1", "challenger_version": "3"}
    append_event(store, SPEC.name, TrailEvent.decision, waiting)

    [row] = gather([SPEC], store, registry, deployer, {})
    assert row.awaiting_approval == "3" and (row.gate.version, row.gate.passed) == ("3", True)
    assert "approval: v3 waits" in attention([row], NOW)[0]

    append_event(store, SPEC.name, TrailEvent.approval, {"model_version": "3", "approved_by": "alice", "reason": "ok"})
    [row] = gather([SPEC], store, registry, deployer, {})
    assert row.awaiting_approval is None


class CountingStore(MemoryArtifactStore):
    """Counts the files read: what a long trail must not cost."""

    _reads: list[str] = PrivateAttr(default_factory=list)

    @property
    def reads(self) -> int:
        return len(self._reads)

    def forget_reads(self) -> None:
        self._reads.clear()

    def read_bytes(self, key: str) -> bytes:
        self._reads.append(key)
        return super().read_bytes(key)


def test_a_long_trail_is_read_newest_first_and_only_as_far_as_needed():
    store = CountingStore()
    for pipeline in (SPEC.name, "quiet"):
        append_event(store, pipeline, TrailEvent.registration, {"model_version": "1", "trigger": "manual"})
        for n in range(TRAIL_DEPTH + 10):  # refused retrainings
            append_event(store, pipeline, TrailEvent.trigger, {"trigger": f"t{n}", "outcome": "not retrained"})
    append_event(store, SPEC.name, TrailEvent.registration, {"model_version": "2", "trigger": "labels"})
    append_event(store, SPEC.name, TrailEvent.gate, {"model_version": "2", "passed": True, "reasons": []})
    append_event(store, SPEC.name, TrailEvent.decision, {"action": "replace", "model_version": "2"})
    store.forget_reads()

    summary = trail_summary(newest_records(store, SPEC.name, TRAIL_DEPTH))
    assert (summary.training.version, summary.gate.version, store.reads) == ("2", "2", 3)

    store.forget_reads()
    quiet = trail_summary(newest_records(store, "quiet", TRAIL_DEPTH))
    assert (quiet.training, store.reads) == (None, TRAIL_DEPTH)  # v1's registration is older than that


class SlowDeployer(MemoryEndpointDeployer):
    """Each endpoint answers only once every endpoint has been asked (a barrier), or never (``hang``)."""

    def setup(self, answering: int, hang: set[str]) -> "SlowDeployer":
        self._barrier = threading.Barrier(answering, timeout=30)
        self._hang, self._release = hang, threading.Event()
        return self

    def running_url(self, name: str) -> str | None:
        if name in self._hang:
            self._release.wait(30)
            return None
        self._barrier.wait()  # raises BrokenBarrierError unless all of them are asked at the same time
        return f"http://{name}.test"


def test_endpoints_are_asked_at_once_and_those_that_do_not_answer_cost_one_deadline():
    specs = [renamed(SPEC, f"p{n:03d}") for n in range(100)]
    hung = {spec.name for spec in specs[::2]}
    deployer = SlowDeployer().setup(answering=50, hang=hung)
    store, registry = MemoryArtifactStore(), MemoryModelRegistry()

    try:
        rows = gather(specs, store, registry, deployer, {}, deadline_s=2)
    finally:
        deployer._release.set()

    answered = [row for row in rows if row.endpoint.up]
    assert [row.pipeline for row in answered] == [spec.name for spec in specs[1::2]]
    assert {row.endpoint.note for row in rows if row.pipeline in hung} == {"no answer within 2 s"}


class BrokenRegistry(MemoryModelRegistry):
    def by_alias(self, name: str, alias: str):
        if name == "broken":
            raise ConnectionError("tracking server unreachable")
        return super().by_alias(name, alias)


def test_a_pipeline_whose_state_cannot_be_read_says_why_and_the_others_are_shown():
    registry = BrokenRegistry()
    rows = gather([renamed(SPEC, "broken"), SPEC], MemoryArtifactStore(), registry, MemoryEndpointDeployer(), {})

    assert rows[0].problems == ["its state could not be read: ConnectionError: tracking server unreachable"]
    assert rows[1].pipeline == SPEC.name and not rows[1].problems
    assert attention(rows, NOW) == [
        "broken: champion: its state could not be read: ConnectionError: tracking server unreachable"
    ]


def test_slo_checks_are_read_from_the_instance_as_last_completed():
    spec = with_slo(SPEC, latency_p99_ms=50, max_error_rate=0.01)
    endpoint = asset_keys(spec.name)["deployed_endpoint"]
    with dg.instance_for_test() as instance:
        for passed in (True, False):
            evaluation = dg.AssetCheckEvaluation(asset_key=endpoint, check_name="latency_slo", passed=passed)
            instance.report_runless_asset_event(evaluation)

        found = latest_slo_checks(instance, [spec, SPEC])

    assert list(found) == [spec.name] and list(found[spec.name]) == [EndpointCheck.latency_slo]
    assert found[spec.name][EndpointCheck.latency_slo].passed is False


def test_the_sensor_asks_for_one_portfolio_per_batch_of_model_changes():
    sensor, schedule = build_portfolio_automation([SPEC])
    keys = asset_keys(SPEC.name)
    with dg.instance_for_test() as instance:
        assert isinstance(sensor(dg.build_sensor_context(instance=instance)), dg.SkipReason)
        for name in ("deployed_endpoint", "drift_report", "raw_data"):
            instance.report_runless_asset_event(dg.AssetMaterialization(keys[name]))
        context = dg.build_sensor_context(instance=instance)
        request = sensor(context)
        assert list(request.asset_selection) == [PORTFOLIO_KEY]
        assert isinstance(sensor(dg.build_sensor_context(instance=instance, cursor=context.cursor)), dg.SkipReason)
        instance.report_runless_asset_event(dg.AssetMaterialization(keys["raw_data"]))  # no model changed
        assert isinstance(sensor(dg.build_sensor_context(instance=instance, cursor=context.cursor)), dg.SkipReason)
    assert schedule.cron_schedule == "0 * * * *"


def test_the_schedule_comes_from_the_environment_and_a_wrong_one_names_the_variable():
    assert portfolio_schedule(environ={PORTFOLIO_CRON_ENV: "*/15 * * * *"}).cron_schedule == "*/15 * * * *"
    with pytest.raises(MlopsError, match=f"{PORTFOLIO_CRON_ENV}='every hour' is not a cron string"):
        portfolio_schedule(environ={PORTFOLIO_CRON_ENV: "every hour"})
