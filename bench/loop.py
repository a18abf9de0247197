"""Does the loop learn, under the real Dagster daemon? Seeded scenarios with known ground truth, each run from a
freshly deployed champion, its sensors running in ``dagster-daemon run`` (a process of its own, each sensor on
its own tick, the runs a tick requests launched through the run queue before the next tick sees them), traffic
through the real endpoint, labels written as batch files into the spec's labels folder.

The world (loop_world.py): a synthetic loan-default pipeline (integer target, LogisticRegression, numeric and
categorical inputs, 20,000 training rows); ``monitoring.window`` is --rows / 5, so a burst of --rows rows is five
drift windows. Sensors at the spec's default interval (30 s; ``--interval`` for another), no cooldown, a daily
budget of 10 (never what stops the loop), defaults for ``training`` and ``deployment.on_invalid`` (reject).
``--tick`` drives the same scenarios with ``mlops-assets tick`` after each event instead (a whole round run to
completion per tick), for comparison.

Per scenario: automatic retrainings that trained a version (per event: a burst is one event, each label batch
one, each gradual window one), the most automatic retraining runs queued or running at once, exact copies (a
version whose ``training_rows_hash`` is another's) and near copies (predictions on a fixed sample within 1e-3
of another version's), promotions, each promoted version's roc_auc against the version it replaced on a fresh
20,000-row sample of its event's traffic (drawn after the decision) with the paired 95% gain interval
("better": the interval lies above 0), the next drift report on one more window of the scenario's traffic,
alerts received by a webhook on 127.0.0.1 (by event), and seconds from the first request of the scenario's
first event to a better champion serving, then, in brackets, from the first request (or the label file) of the
event it answered: a concept change cannot be learnt before its labels arrive, and the bench's own pauses
between events are not the loop's. After each event the bench waits until the loop has settled: no
run queued or running, and none created or ended for two sensor intervals.

Goals: at most one retraining per event; no copies; no promotion of a version that is not better; the concept
flip recovered (the final champion better than the first on the flipped traffic); a broken feed alerted
within one check interval (the first alert at most two sensor intervals after the first broken request: one
for the tick to come, one for the run it starts); a better champion within 3 minutes of the event that made
one possible.

Usage: python bench/loop.py [--only NAME ...] [--rows 50000] [--interval S] [--timeout 600] [--tick] [--keep]
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from loop_outcome import Outcome, Promotion, row  # noqa: E402
from loop_stack import (  # noqa: E402
    AlertReceiver,
    Observer,
    Timeout,
    max_at_once,
    send_counting,
    wait_until_settled,
)
from loop_world import (  # noqa: E402
    PIPELINE,
    SCENARIOS,
    STABLE,
    TARGET,
    Labels,
    Scenario,
    Traffic,
    World,
    build_spec,
    draw,
    label_batch,
    write_training_data,
)
from serving import machine_line  # noqa: E402

from tests.daemon import BIN, Daemon, write_instance_config, write_workspace  # noqa: E402

TRUTH_ROWS = 20_000


class ScenarioRun:
    """One scenario's world: its own MLOPS_HOME, DAGSTER_HOME (SQLite), spec folder, endpoint and daemon."""

    def __init__(self, scenario: Scenario, root: Path, args, seed: int):
        import dagster as dg

        from mlops_assets.local.layout import LocalLayout
        from mlops_assets.resources import local_resources
        from mlops_assets.spec.operations import Retraining

        self.scenario, self.root, self.args = scenario, root, args
        self.seed, self.rng, self.next_id = seed, np.random.default_rng(seed), 1_000_000
        self.interval = args.interval or Retraining().interval_seconds
        self.pipelines = root / "pipelines"
        write_training_data(self.pipelines, self.rng)
        self.receiver = AlertReceiver()
        self.spec = build_spec(args.rows, self.receiver.url, args.interval)
        (self.pipelines / f"{PIPELINE}.yaml").write_text(yaml.safe_dump(self.spec))
        dagster_home = root / "dagster_home"
        dagster_home.mkdir()
        write_instance_config(dagster_home)
        self.env = {
            **{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
            "MLOPS_HOME": str(root / "home"),
            "DAGSTER_HOME": str(dagster_home),
            "MLOPS_PIPELINES": str(self.pipelines),
            "NML_DISABLE_USAGE_LOGGING": "1",
        }
        os.environ.update({k: self.env[k] for k in ("MLOPS_HOME", "DAGSTER_HOME", "MLOPS_PIPELINES")})
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        self.layout = LocalLayout.from_env().ensure()
        self.resources = local_resources(self.layout)
        self.instance = dg.DagsterInstance.from_config(str(dagster_home))
        self.observer = Observer(self.instance, PIPELINE)
        self.log = self.layout.data / PIPELINE / "inference_log"
        self.daemon: Daemon | None = None
        self.traffic: pd.DataFrame | None = None
        self.labelled, self.batches = 0.0, 0
        self.url = ""

    def deploy(self) -> str:
        """The whole lifecycle once, in this process, before any sensor runs: the first champion serving."""
        import dagster as dg

        from mlops_assets.definitions.folder import build_definitions
        from mlops_assets.local.tick import QUIET

        defs = build_definitions(self.pipelines, self.resources)
        assets = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]
        result = dg.materialize(
            assets, resources=self.resources.by_key(), instance=self.instance, raise_on_error=False, run_config=QUIET
        )
        assert result.success, "the champion did not deploy"
        return result.asset_materializations_for_node(f"{PIPELINE}__deployed_endpoint")[-1].metadata["url"].value

    def start_loop(self, deadline: float) -> None:
        """The daemon, up once it has ticked the drift and labels sensors (whose first tick records what is
        there); with --tick, one ``mlops-assets tick`` for the same."""
        if self.args.tick:
            self.tick(deadline)
            return
        self.daemon = Daemon(write_workspace(self.root), self.env, self.root / "daemon.log")
        sensors = [f"{PIPELINE}_drift_sensor", f"{PIPELINE}_labels_sensor"]
        while not self.observer.sensors_ticked(sensors):
            if time.time() > deadline or self.daemon.process.poll() is not None:
                raise RuntimeError(f"the daemon did not tick {sensors}:\n{self.daemon.tail()}")
            time.sleep(2)

    def tick(self, deadline: float) -> None:
        try:
            subprocess.run(
                [str(BIN / "mlops-assets"), "tick", "--pipelines", str(self.pipelines)],
                env=self.env,
                cwd=REPO,
                check=True,
                capture_output=True,
                timeout=max(deadline - time.time(), 1),
            )
        except subprocess.TimeoutExpired as exc:
            raise Timeout("mlops-assets tick ran past the scenario's cap") from exc

    def send(self, event: Traffic, rows: int, outcome: Outcome) -> None:
        from mlops_assets.serving.traffic import send_rows

        frame = draw(event.world, rows, self.rng, self.next_id)
        self.next_id += rows
        before = self.logged()
        requests = frame.drop(columns=[TARGET])
        if event.world.null_column or event.world.new_category_share:  # some requests are refused (400)
            accepted, refused = send_counting(self.url, requests, event.batch)
        else:
            accepted, refused = send_rows(self.url, requests, event.batch), 0
        outcome.refused_rows += refused
        deadline = time.monotonic() + 120
        while self.logged() < before + accepted:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the endpoint did not log {accepted} rows in 120 s")
            time.sleep(0.2)
        self.traffic, self.labelled = frame, 0.0

    def write_labels(self, event: Labels) -> None:
        batch = label_batch(self.traffic, self.labelled, event.share, event.flipped, self.rng)
        self.labelled, self.batches = event.share, self.batches + 1
        staging = self.root / "labels.tmp"
        batch.to_csv(staging, index=False)
        os.replace(staging, self.pipelines / "labels" / f"batch-{self.batches:04d}.csv")  # whole, never half

    def settle(self, deadline: float) -> None:
        if self.args.tick:
            self.tick(deadline)
        else:
            wait_until_settled(self.observer, self.interval, time.time(), deadline, self.daemon)

    def logged(self) -> int:
        import pyarrow.parquet as pq

        return sum(pq.read_metadata(p).num_rows for p in self.log.glob("*.parquet"))

    def close(self) -> None:
        from mlops_assets.serving.endpoint_state import stop

        if self.daemon is not None:
            self.daemon.stop()
        stop(self.layout.endpoints, PIPELINE)
        self.receiver.close()
        self.instance.dispose()


def run_scenario(scenario: Scenario, root: Path, args, seed: int) -> Outcome:
    run, outcome = ScenarioRun(scenario, root, args, seed), Outcome()
    starts: list[float] = []
    try:
        drive(run, scenario, args, outcome, starts)
        observe(run, outcome, starts)
        judge(run, outcome, starts)
    finally:
        run.close()
    return outcome


def check_interval_s(run: ScenarioRun) -> float:
    """How often the endpoint checks' sensor runs the schema_break check: the spec's setting, else its default."""
    from mlops_assets.spec import PipelineSpec

    spec = PipelineSpec.model_validate(run.spec, context={"base_dir": run.pipelines})
    return spec.monitoring.schema_break.interval_minutes * 60


def wait_for_break_alert(run: ScenarioRun, since: float, deadline: float) -> None:
    """Until the schema_break alert arrives, or one check interval and two sensor ticks have passed since the
    break began: the goal is an alert within one check interval."""
    from mlops_assets.naming import AlertEvent

    until = min(deadline, since + check_interval_s(run) + 2 * run.interval)
    while time.time() < until and not any(e == AlertEvent.schema_break for _, e in run.receiver.since(since)):
        time.sleep(2)


def drive(run: ScenarioRun, scenario: Scenario, args, outcome: Outcome, starts: list[float]) -> None:
    """The scenario's events, each followed by the loop settling, then one more window of its traffic."""
    try:
        run.url = run.deploy()
        deadline = time.time() + args.timeout
        run.start_loop(deadline)
        for event in scenario.events:
            starts.append(time.time())
            if isinstance(event, Traffic):
                run.send(event, int(event.share * args.rows), outcome)
            else:
                run.write_labels(event)
            run.settle(deadline)
        if scenario.breaks_feed:  # the schema_break check runs on its own cadence, not the sensors' tick
            wait_for_break_alert(run, starts[0], deadline)
        starts.append(time.time())  # one more window of the last traffic: is its report clean?
        window = run.spec["monitoring"]["window"]
        run.send(Traffic(scenario.last_traffic.world, batch=scenario.last_traffic.batch), window, outcome)
        run.settle(deadline)
        reports = [r for r in run.observer.materialized("drift_report") if r.at >= starts[-1]]
        outcome.next_report = reports[-1].values.get("status", "?") if reports else "no report"
    except Timeout as exc:
        outcome.stopped = f"TIMEOUT: {exc}"
    except Exception as exc:  # one scenario's failure is its row, and the others still run
        outcome.stopped = f"ERROR: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        traceback.print_exc()
        if run.daemon is not None:
            print(f"dagster-daemon said:\n{run.daemon.tail()}", file=sys.stderr)
    finally:
        if run.daemon is not None:
            run.daemon.stop()  # nothing moves while it is judged


def event_of(at: float, starts: list[float]) -> int:
    return max([i for i, start in enumerate(starts) if start <= at], default=0)


def observe(run: ScenarioRun, outcome: Outcome, starts: list[float]) -> None:
    """Retrainings per event, runs at once, promotions and alerts, from the instance and the webhook."""
    from mlops_assets.naming import AlertEvent

    runs = run.observer.retraining_runs()
    retraining_ids = {r.run_id for r in runs}
    trained = [m for m in run.observer.materialized("trained_model") if m.run_id in retraining_ids]
    outcome.retrainings = [0] * max(len(starts), 1)
    for item in trained:
        outcome.retrainings[event_of(item.at, starts)] += 1
    outcome.retraining_runs, outcome.at_once = len(runs), max_at_once(runs, time.time())
    serving = "1"
    for move in run.observer.champion_moves():
        version = str(move.values["model_version"])
        outcome.promotions.append(Promotion(version, serving, move.at, event_of(move.at, starts)))
        serving = version
    begin = starts[0] if starts else time.time()
    alerts = run.receiver.since(begin)
    outcome.alerts = dict(collections.Counter(event for _, event in alerts))
    breaks = [at for at, event in alerts if event == AlertEvent.schema_break]
    if run.scenario.breaks_feed:
        outcome.alert_within_s = check_interval_s(run) + 2 * run.interval
        outcome.alert_s = breaks[0] - begin if breaks else None


def judge(run: ScenarioRun, outcome: Outcome, starts: list[float]) -> None:
    """Promotions on fresh samples of their event's traffic, drawn now; the final champion against the first on
    the last traffic; copies on a fixed sample."""
    from mlops_assets.evaluation.confidence import paired_gain_interval
    from mlops_assets.evaluation.holdouts import score
    from mlops_assets.model.metrics import compute_metrics

    registry, rng = run.resources.registry, np.random.default_rng(10_000 + run.seed)
    versions = list_versions(registry)
    if not versions:
        return
    models = {v: registry.load(PIPELINE, v) for v in versions}
    truths: dict[World, pd.DataFrame] = {}

    def truth(world: World) -> pd.DataFrame:
        if world not in truths:
            truths[world] = draw(world, TRUTH_ROWS, rng, 50_000_000 + len(truths) * TRUTH_ROWS)
        return truths[world]

    def compare(before: str, after: str, world: World):
        rows = truth(world)
        a, b = score(models[before], rows, TARGET), score(models[after], rows, TARGET)
        aucs = tuple(compute_metrics(["roc_auc"], *vars(s).values())["roc_auc"] for s in (a, b))
        gain = paired_gain_interval("roc_auc", a.y_true, (a.y_pred, a.y_score), (b.y_pred, b.y_score), n_boot=1000)
        return aucs, gain

    traffic_worlds = [e.world if isinstance(e, Traffic) else None for e in run.scenario.events]
    for promotion in outcome.promotions:
        worlds = [w for w in traffic_worlds[: promotion.event + 1] if w is not None] or [
            run.scenario.last_traffic.world
        ]
        promotion.auc, promotion.gain = compare(promotion.replaced, promotion.version, worlds[-1])
    better = [p for p in outcome.promotions if p.better]
    if better and starts:
        outcome.better_s = better[0].at - starts[0]
        outcome.better_after_event_s = better[0].at - starts[better[0].event]
    final = outcome.promotions[-1].version if outcome.promotions else "1"
    (outcome.first_auc, _), gain = compare("1", final, run.scenario.last_traffic.world)
    outcome.final_gain = gain if final != "1" else None
    outcome.exact_copies, outcome.near_copies = copies(
        registry, models, truth(STABLE), truth(run.scenario.last_traffic.world)
    )


def list_versions(registry) -> list[str]:
    versions = []
    while True:
        try:
            registry.get(PIPELINE, str(len(versions) + 1))
        except Exception:
            return versions
        versions.append(str(len(versions) + 1))


def copies(registry, models: dict, *samples: pd.DataFrame) -> tuple[int, int]:
    """Versions after the first whose training rows are an earlier version's (exact), or whose predicted
    probabilities on ``samples`` are all within 1e-3 of an earlier version's (near)."""
    fixed = pd.concat([s.head(2_000) for s in samples], ignore_index=True)
    hashes = {v: registry.get(PIPELINE, v).tags.get("training_rows_hash") for v in models}
    scores = {v: np.asarray(m.predict(fixed).proba, dtype=float) for v, m in models.items()}
    exact = near = 0
    ordered = list(models)
    for i, version in enumerate(ordered[1:], start=1):
        earlier = ordered[:i]
        if any(hashes[version] == hashes[e] for e in earlier):
            exact += 1
        elif any(np.max(np.abs(scores[version] - scores[e])) <= 1e-3 for e in earlier):
            near += 1
    return exact, near


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="scenario names (a prefix is enough)")
    parser.add_argument("--rows", type=int, default=50_000, help="rows of a burst: five drift windows")
    parser.add_argument("--interval", type=int, help="retraining.interval_seconds (default: the spec's, 30)")
    parser.add_argument("--timeout", type=float, default=600, help="cap on a scenario's events, in seconds")
    parser.add_argument("--tick", action="store_true", help="mlops-assets tick after each event, no daemon")
    parser.add_argument("--keep", action="store_true", help="keep each scenario's folder (stores, runs) to read")
    args = parser.parse_args()
    os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
    from mlops_assets.spec.operations import Retraining

    interval = args.interval or Retraining().interval_seconds
    loop = "mlops-assets tick after each event" if args.tick else f"dagster-daemon run, sensors every {interval} s"
    print(
        machine_line(
            dt.datetime.now().isoformat(timespec="minutes"), ("dagster", "mlflow", "scikit-learn"), os.getloadavg()[0]
        )
    )
    window = build_spec(args.rows, "http://unused", None)["monitoring"]["window"]
    print(f"\n{loop}; {args.rows:,} rows a burst, drift window {window:,}\n")
    print(
        "| scenario | retrainings (per event) of automatic runs | most runs at once | copies exact / near | "
        "promotions | roc_auc: first champion on the last traffic; each promotion over the version it replaced, on "
        "its event's traffic (gain, 95% CI) | next drift report | alerts | s to a better champion (from its event) "
        "| goals missed |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for seed, scenario in enumerate(SCENARIOS):
        if args.only and not any(scenario.name.startswith(o) for o in args.only):
            continue
        if args.keep:
            folder = tempfile.mkdtemp(prefix=f"loop-{scenario.name.replace(' ', '-')}-")
            print(f"<!-- {scenario.name}: {folder} -->", flush=True)
            outcome = run_scenario(scenario, Path(folder), args, seed)
        else:
            with tempfile.TemporaryDirectory() as folder:
                outcome = run_scenario(scenario, Path(folder), args, seed)
        print(row(scenario, outcome, interval), flush=True)
    print(f"\n1-minute load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
