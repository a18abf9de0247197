"""The rollout driver (``roll_out``) over in-memory fakes: a canary promoted or rolled back on the counters and
labelled arms it reads, at its timeout too; shadow and ab left running. Time is a fake clock: a poll's sleep
moves it on and takes no time."""

import datetime as dt
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from pydantic import PrivateAttr

from mlops_assets.monitoring.label_join import Labelled
from mlops_assets.naming import CHALLENGER, CHAMPION
from mlops_assets.rollout import driver
from mlops_assets.rollout.arms import ArmMetrics
from mlops_assets.rollout.driver import LABEL_POLL_SECONDS, roll_out
from mlops_assets.spec import load_spec
from tests.unit.fakes import MemoryEndpointDeployer, MemoryModelRegistry

REPO = Path(__file__).resolve().parents[3]
SPEC = load_spec(REPO / "pipelines" / "breast_cancer.yaml")  # labels by patient_id, primary metric roc_auc
NAME = SPEC.name


def with_rollout(strategy: str = "canary", labels: bool = True, **settings):
    rollout = SPEC.deployment.rollout.model_copy(update=settings)
    deployment = SPEC.deployment.model_copy(update={"strategy": strategy, "rollout": rollout})
    source = SPEC.source if labels else SPEC.source.model_copy(update={"labels": None})
    return SPEC.model_copy(update={"deployment": deployment, "source": source})


class Clock:
    """Stands in for the ``time`` module the driver reads: ``sleep`` moves ``monotonic`` on."""

    def __init__(self):
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Log:
    def __init__(self):
        self.infos, self.warnings = [], []

    def info(self, message: str) -> None:
        self.infos.append(message)

    def warning(self, message: str) -> None:
        self.warnings.append(message)


class Reader:
    """``read_arms``: what the logs show, as the test scripts it; keeps when it was read."""

    def __init__(self, clock: Clock, figures=lambda reads: []):
        self.clock, self.figures, self.reads = clock, figures, []

    def __call__(self, since, until):
        self.reads.append((self.clock.now, since, until))
        return self.figures(len(self.reads))


class Canary:
    """A champion v1 serving, a challenger v2 registered, the endpoint answering per ``arrive``."""

    def __init__(self, clock: Clock, registry: MemoryModelRegistry | None = None):
        self.clock, self.log = clock, Log()
        self.registry = registry or MemoryModelRegistry()
        self.champion, self.challenger = self.registry.register(NAME), self.registry.register(NAME)
        self.registry.promote(NAME, "1", "test")
        self.deployer = MemoryEndpointDeployer.over(self.registry)
        self.deployer.deploy("spec.yaml", self.champion, "log")
        self.polls = 0

    def traffic(self, challenger: int, champion: int, challenger_errors: int = 0, champion_errors: int = 0):
        """Each poll finds this many more requests per arm."""

        def arrive(deployer: MemoryEndpointDeployer) -> None:
            self.polls += 1
            deployer.answer(NAME, CHALLENGER, challenger, errors=challenger_errors)
            deployer.answer(NAME, CHAMPION, champion, errors=champion_errors)

        self.deployer.on_status(arrive)

    def roll_out(self, spec, read_arms):
        return roll_out(
            spec,
            self.registry,
            self.deployer,
            self.champion,
            self.challenger,
            "alice",
            self.log,
            read_arms,
            spec.deployment.strategy,
            1.0,
        )

    def served(self) -> str:
        return self.deployer.served_version(NAME)

    def champion_version(self) -> str:
        return self.registry.by_alias(NAME, CHAMPION).version


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(driver, "time", clock)
    return clock


@pytest.fixture
def canary(clock) -> Canary:
    return Canary(clock)


def labelled_arm(version: str, rows: int, noise: float, seed: int) -> ArmMetrics:
    """A served arm with ``rows`` labelled predictions whose scores are the truth plus ``noise``."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, rows)
    score = np.clip(truth + rng.normal(0, noise, rows), 0, 1)
    labelled = Labelled(truth, (score > 0.5).astype(int), np.column_stack([1 - score, score]))
    value = float(np.mean((score > 0.5) == truth))  # stands in for the metric: only the rows are compared
    return ArmMetrics(version, "served", rows, rows, None, 0.5, "roc_auc", rows, value, value, value, None, labelled)


def test_a_canary_without_labels_is_promoted_once_the_challenger_answered_enough_requests(canary, clock):
    canary.traffic(challenger=20, champion=180)
    figures = [labelled_arm("2", 5, 0.3, seed=0)]
    read_arms = Reader(clock, lambda reads: figures)
    outcome = canary.roll_out(with_rollout(labels=False, min_requests=50), read_arms)
    assert (outcome.action, outcome.served_version) == ("promoted", "2")
    assert canary.polls == 3 and clock.now == 1_002.0  # 20, 40, then 60 requests: two sleeps of a second
    assert canary.champion_version() == canary.served() == "2"
    assert canary.registry.get(NAME, "2").tags["approved_by"] == "canary (alice)"
    assert canary.deployer.rollout_status(NAME).rollout is None
    assert outcome.arms[CHALLENGER]["requests"] == 60 and outcome.arms[CHAMPION]["requests"] == 540
    assert outcome.metrics == figures
    ((_, since, until),) = read_arms.reads  # read once, after the verdict, over the whole rollout
    assert since < until <= dt.datetime.now(dt.UTC)
    assert outcome.reasons == ["ok: error rate 0.0000 vs champion 0.0000 (allowed increase 0.01)"]


def test_a_canary_whose_error_rate_rises_more_than_allowed_is_rolled_back(canary, clock):
    canary.traffic(challenger=100, champion=900, challenger_errors=3, champion_errors=9)
    outcome = canary.roll_out(with_rollout(labels=False, min_requests=100, max_error_rate_increase=0.01), Reader(clock))
    assert (outcome.action, outcome.served_version) == ("rolled back", "1")
    assert outcome.reasons == ["FAIL: error rate 0.0300 vs champion 0.0100 (allowed increase 0.01)"]
    assert canary.champion_version() == canary.served() == "1"
    tags = canary.registry.get(NAME, "2").tags
    assert tags["canary"] == "rolled back" and tags["canary_reasons"] == outcome.reasons[0]
    assert "approved_by" not in tags and canary.deployer.rollout_status(NAME).rollout is None


def test_a_canary_with_too_few_requests_by_the_timeout_is_rolled_back(canary, clock):
    canary.traffic(challenger=1, champion=9)
    outcome = canary.roll_out(with_rollout(labels=False, min_requests=1_000, timeout_minutes=1.0), Reader(clock))
    assert (outcome.action, outcome.served_version) == ("rolled back", "1")
    assert outcome.reasons == ["FAIL: fewer than 1000 requests in 1.0 min"]
    assert clock.now == 1_060.0 and canary.polls == 61  # polled each second until the deadline, then decided
    assert canary.champion_version() == canary.served() == "1"
    assert canary.deployer.rollout_status(NAME).rollout is None


def test_a_canary_with_labels_waits_for_enough_labelled_rows_in_both_arms_then_promotes_a_like_challenger(
    canary, clock
):
    canary.traffic(challenger=10, champion=90)

    def figures(reads: int) -> list[ArmMetrics]:  # labels arrive: 20 rows per arm and read, then 200
        rows = 200 if reads >= 3 else 20
        return [labelled_arm("1", rows, 0.4, seed=1), labelled_arm("2", rows, 0.4, seed=2)]

    read_arms = Reader(clock, figures)
    spec = with_rollout(min_requests=30, min_labelled_rows=100, min_gain=-0.05, timeout_minutes=10)
    outcome = canary.roll_out(spec, read_arms)
    assert (outcome.action, outcome.served_version) == ("promoted", "2")
    read_times = [at for at, _, until in read_arms.reads if until is None]
    assert read_times[0] == 1_002.0  # not before the challenger's 30th request (third poll)
    assert np.all(np.diff(read_times) >= LABEL_POLL_SECONDS) and len(read_times) == 3
    assert outcome.reasons[0].startswith("ok: error rate")
    assert outcome.reasons[1].startswith("ok: online roc_auc") and "the interval must reach -0.05" in outcome.reasons[1]
    assert canary.champion_version() == canary.served() == "2"


def test_a_canary_with_labels_rolls_back_a_challenger_confidently_worse_online(canary, clock):
    canary.traffic(challenger=50, champion=450)
    worse = Reader(clock, lambda reads: [labelled_arm("1", 300, 0.2, seed=3), labelled_arm("2", 300, 0.8, seed=4)])
    outcome = canary.roll_out(with_rollout(min_requests=50, min_labelled_rows=100, min_gain=0.0), worse)
    assert (outcome.action, outcome.served_version) == ("rolled back", "1")
    assert outcome.reasons[0].startswith("ok: error rate") and outcome.reasons[1].startswith("FAIL: online roc_auc")
    assert canary.champion_version() == canary.served() == "1"
    assert "FAIL: online roc_auc" in canary.registry.get(NAME, "2").tags["canary_reasons"]


def test_at_the_timeout_without_enough_labelled_rows_the_verdict_rests_on_error_rates_and_says_why(canary, clock):
    canary.traffic(challenger=50, champion=450)
    few = Reader(clock, lambda reads: [labelled_arm("1", 3, 0.2, seed=5), labelled_arm("2", 4, 0.2, seed=6)])
    outcome = canary.roll_out(with_rollout(min_requests=50, min_labelled_rows=100, timeout_minutes=2), few)
    assert (outcome.action, outcome.served_version) == ("promoted", "2")
    assert clock.now == 1_120.0
    assert len(outcome.reasons) == 2 and outcome.reasons[1].startswith(
        "online metric not compared by the timeout: it needs 100 labelled rows per arm and a defined value "
        "(champion 3 rows, roc_auc "
    )
    assert "challenger 4 rows" in outcome.reasons[1]


def test_a_canary_that_cannot_finish_is_ended_before_the_error_goes_on(canary, clock):
    canary.traffic(challenger=50, champion=450)

    def unreachable(since, until):
        raise OSError("the artifact store is unreachable")

    with pytest.raises(OSError, match="unreachable"):
        canary.roll_out(with_rollout(min_requests=50), unreachable)
    assert canary.deployer.rollout_status(NAME).rollout is None
    assert canary.champion_version() == canary.served() == "1"
    assert canary.registry.get(NAME, "2").tags["canary"].startswith("ended without a verdict: OSError(")


def test_the_verdict_stands_when_its_figures_cannot_be_read_from_the_logs(canary, clock):
    canary.traffic(challenger=50, champion=450)

    def unreadable(since, until):
        raise OSError("no log files")

    outcome = canary.roll_out(with_rollout(labels=False, min_requests=50), unreadable)
    assert (outcome.action, outcome.served_version, outcome.metrics) == ("promoted", "2", [])
    assert canary.champion_version() == "2"
    assert canary.log.warnings == [
        "canary decided, but its figures could not be read from the logs: OSError('no log files')"
    ]


@pytest.mark.parametrize("mode", ["shadow", "ab"])
def test_shadow_and_ab_are_started_and_left_running_for_a_person(canary, clock, mode):
    canary.traffic(challenger=50, champion=450)
    read_arms = Reader(clock)
    outcome = canary.roll_out(with_rollout(mode, share=0.25), read_arms)
    assert (outcome.action, outcome.served_version) == (f"{mode} started", "1")
    assert outcome.reasons == [f"{mode} of v2 against champion v1 is running"]
    rollout = canary.deployer.rollout_status(NAME).rollout
    assert (rollout.mode, rollout.challenger_version, rollout.share) == (mode, "2", 0.25)
    assert rollout.sticky_key == SPEC.id_column  # callers stay on one arm by the spec's id
    assert canary.champion_version() == "1" and canary.registry.get(NAME, "2").tags["rollout"] == f"{mode} against v1"
    assert read_arms.reads == [] and clock.now == 1_000.0  # nothing waited for, nothing decided


class RegistryThatGoesDown(MemoryModelRegistry):
    _down: bool = PrivateAttr(default=False)

    def go_down(self) -> None:
        self._down = True

    def promote(self, name: str, version: str, approved_by: str, rollback: bool = False):
        if self._down:
            raise ConnectionError("the registry is unreachable")
        return super().promote(name, version, approved_by, rollback)


def test_a_canary_whose_promotion_fails_is_still_ended_before_the_error_goes_on(clock):
    canary = Canary(clock, RegistryThatGoesDown())
    canary.traffic(challenger=50, champion=450)
    canary.registry.go_down()  # after the verdict, when the challenger is promoted
    with pytest.raises(ConnectionError):
        canary.roll_out(with_rollout(labels=False, min_requests=50), Reader(clock))
    assert canary.deployer.rollout_status(NAME).rollout is None


def test_a_challenger_the_endpoint_cannot_load_starts_no_canary(canary, clock):
    canary.deployer.refuse("2")
    with pytest.raises(dg.Failure, match="could not load challenger 2"):
        canary.roll_out(with_rollout(labels=False, min_requests=50), Reader(clock))
    assert canary.deployer.rollout_status(NAME).rollout is None and canary.champion_version() == "1"
    assert clock.now == 1_000.0
