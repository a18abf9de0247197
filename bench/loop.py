"""Does the loop learn? A bank of seeded scenarios with known ground truth, each run from a freshly deployed
champion through the real endpoint, the real sensors (ticked through Dagster's API, as ``mlops-assets tick``)
and real materializations.

A synthetic binary loan-default pipeline: 20,000 labelled training rows, an integer target (0/1), numeric
and categorical inputs; production windows of 50,000 rows sent through the endpoint 1,000 rows a request.
Per scenario it prints the action the loop took and its trigger, the retrainings (new model versions; a
version whose training set equals the champion's would be a copy and counts as a failure), the champion's and
the new version's roc_auc on a fresh sample of the scenario's own labelled traffic (revealed to the bench
after the decision) with the paired 95% interval of the new one's gain ("at least as good" = the interval
reaches 0; "better" = it lies above 0), whether the next drift report on the same traffic is clean, and the
seconds from the first drifted request to the new champion serving (sensors ticked as soon as the traffic is
logged; the daemon adds its tick interval).

Usage: python bench/loop.py [--only NAME ...] [--rows 50000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from serving import machine_line  # noqa: E402

EMPLOYMENT = np.array(["salaried", "self_employed", "retired"])
SPEC = {
    "name": "loans",
    "task": "binary",
    "target": "default",
    "id_column": "loan_id",
    "source": {"path": "data/train.parquet", "labels": {"path": "labels", "id_column": "loan_id"}},
    "schema": {
        "columns": {
            "loan_id": {"dtype": "str"},
            "income": {"dtype": "float", "gt": 0},
            "debt_ratio": {"dtype": "float"},
            "utilization": {"dtype": "float"},
            "age": {"dtype": "float", "ge": 18, "le": 100},
            "employment": {"dtype": "str"},
            "default": {"dtype": "int", "isin": [0, 1]},
        }
    },
    "model": {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"C": 1.0, "max_iter": 1000}},
    "features": {
        "transforms": [
            {"kind": "standard", "columns": ["income", "debt_ratio", "utilization", "age"]},
            {"kind": "onehot", "columns": ["employment"]},
        ]
    },
    "evaluation": {
        "metrics": ["roc_auc", "accuracy", "log_loss"],
        "gate": {"thresholds": {"roc_auc": 0.6}, "min_gain": {"roc_auc": -0.01}},
    },
    "monitoring": {"window": 50_000, "min_rows": 500},
    "retraining": {"cooldown_minutes": 0, "daily_budget": 10, "sensors": "stopped"},
    # rows that break the schema (the empty column) are scored and flagged, so they reach the log and the
    # drift report; under the default (reject) they are 400s and the report's requests_accepted check fails
    "deployment": {"on_invalid": "flag"},
    "training": {"window": {"policy": "newest", "rows": 40_000}, "recent_holdout": {"rows": 5_000, "min_rows": 500}},
}


@dataclass(frozen=True)
class World:
    """How production rows are drawn and labelled in one scenario."""

    debt_shift: float = 0.0  # in standard deviations
    utilization_spread: float = 1.0
    income_factor: float = 1.0
    new_category_share: float = 0.0  # employment "gig", never seen in training
    concept_flip: bool = False  # debt_ratio's effect on default reversed
    null_column: str | None = None


def draw(world: World, rows: int, rng: np.random.Generator, start_id: int) -> pd.DataFrame:
    income = rng.lognormal(10.5, 0.4, rows) * world.income_factor
    frame = pd.DataFrame(
        {
            "loan_id": [f"L{i:08d}" for i in range(start_id, start_id + rows)],
            "income": income,
            "debt_ratio": rng.normal(0.35 + 0.12 * world.debt_shift, 0.12, rows),
            "utilization": 0.5 + (rng.normal(0, 0.2, rows)) * world.utilization_spread,
            "age": np.clip(rng.normal(42, 12, rows), 18, 100).round(),
            "employment": rng.choice(EMPLOYMENT, rows, p=[0.6, 0.3, 0.1]).astype(object),
        }
    )
    gig = rng.random(rows) < world.new_category_share
    frame.loc[gig, "employment"] = "gig"
    debt = (frame["debt_ratio"] - 0.35) / 0.12 * (-1.5 if world.concept_flip else 1.5)
    logit = -1.3 + debt - 0.8 * (np.log(frame["income"]) - 10.5) / 0.4 + 2.0 * (frame["utilization"] - 0.5) ** 2 / 0.04
    logit += np.select([frame["employment"] == "self_employed", frame["employment"] == "gig"], [0.5, 1.5], 0.0)
    frame["default"] = (rng.random(rows) < 1 / (1 + np.exp(-(logit - 1.0)))).astype(int)
    if world.null_column:
        frame[world.null_column] = np.nan
    return frame


SCENARIOS = {
    "no shift": (World(), False),
    "negligible shift, 1,000,000 rows": (World(income_factor=1.01), False),
    "covariate shift (debt_ratio +0.5 sd)": (World(debt_shift=0.5), False),
    "spread change (utilization x1.8)": (World(utilization_spread=1.8), False),
    "unseen category (20% 'gig'), labels later": (World(new_category_share=0.2), True),
    "concept change, labels later": (World(concept_flip=True), True),
    "column missing from traffic (utilization)": (World(null_column="utilization"), False),
}


@dataclass
class Outcome:
    actions: list[str] = field(default_factory=list)
    retrainings: int = 0
    copies: int = 0
    champion_auc: float = float("nan")
    new_auc: float = float("nan")
    gain: tuple[float, float, float] | None = None  # new minus champion, paired 95% interval
    next_report: str = ""
    seconds_to_new_champion: float = float("nan")


def wait_logged(folder: Path, rows: int, timeout: float = 120) -> None:
    import pyarrow.parquet as pq

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(pq.read_metadata(p).num_rows for p in folder.glob("*.parquet")) >= rows:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the endpoint did not log {rows} rows in {timeout} s")


class Run:
    """One scenario's world: its own MLOPS_HOME, Dagster instance, spec and endpoint."""

    def __init__(self, root: Path, spec: dict, seed: int):
        import dagster as dg

        from mlops_assets.definitions.folder import build_definitions
        from mlops_assets.local.layout import LocalLayout
        from mlops_assets.local.tick import SensorDriver
        from resources import local_resources
        from sensors import build_sensors

        self.root, self.rng = root, np.random.default_rng(seed)
        pipelines = root / "pipelines"
        (pipelines / "data").mkdir(parents=True)
        (pipelines / "labels").mkdir()
        draw(World(), 20_000, self.rng, 0).to_parquet(pipelines / "data" / "train.parquet")
        (pipelines / "loans.yaml").write_text(yaml.safe_dump(spec))
        os.environ["MLOPS_HOME"] = str(root / "home")
        self.layout = LocalLayout.from_env().ensure()
        self.resources = local_resources(self.layout)
        self.defs = build_definitions(pipelines, self.resources, build_sensors)
        (root / "dagster_home").mkdir()
        self.instance = dg.DagsterInstance.local_temp(str(root / "dagster_home"))
        self.driver = SensorDriver(self.defs, self.instance, self.resources)
        self.pipelines, self.next_id = pipelines, 1_000_000
        self.log = self.layout.data / "loans" / "inference_log"

    def deploy(self) -> str:
        import dagster as dg

        from mlops_assets.local.tick import QUIET

        assets = [a for a in self.defs.assets if isinstance(a, dg.AssetsDefinition)]
        result = dg.materialize(
            assets, resources=self.resources, instance=self.instance, raise_on_error=False, run_config=QUIET
        )
        assert result.success, "the champion did not deploy"
        return result.asset_materializations_for_node("loans__deployed_endpoint")[-1].metadata["url"].value

    def traffic(self, world: World, rows: int) -> pd.DataFrame:
        frame = draw(world, rows, self.rng, self.next_id)
        self.next_id += rows
        return frame

    def logged(self) -> int:
        import pyarrow.parquet as pq

        return sum(pq.read_metadata(p).num_rows for p in self.log.glob("*.parquet"))

    def until_quiet(self, outcome: Outcome, started: float) -> str:
        """Tick every sensor until none asks for a run; return the last drift report's status."""
        status = ""
        for _ in range(10):
            launched = self.driver.step([s.name for s in self.defs.sensors])
            if not launched:
                return status
            for item in launched:
                status = self.account(item, outcome, started) or status
        return status

    def account(self, item, outcome: Outcome, started: float) -> str:
        status = ""
        for event in item.result.get_asset_materialization_events():
            materialization = event.event_specific_data.materialization
            values = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
            name = materialization.asset_key.path[-1]
            if name == "drift_report":
                status = values["status"]
                outcome.actions.append(f"report {values['window_end']}: {status}")
            elif name == "trained_model":
                outcome.retrainings += 1
                outcome.actions.append(f"v{values['model_version']} trained ({values['trigger'].split(' ')[0]})")
            elif name == "deployed_endpoint" and values["model_version"] != "1":
                outcome.seconds_to_new_champion = time.monotonic() - started
                outcome.actions.append(f"v{values['model_version']} promoted")
        return status

    def judge(self, outcome: Outcome, truth: pd.DataFrame) -> None:
        """Champion and newest version on the scenario's labelled traffic, and the new one's paired gain."""
        from mlops_assets.evaluation.confidence import paired_gain_interval
        from mlops_assets.evaluation.holdouts import score
        from mlops_assets.evaluation.metrics import compute_metrics

        registry = self.resources["registry"]
        scored = [score(registry.load("loans", str(v)), truth, "default") for v in range(1, 2 + outcome.retrainings)]
        champion, newest = scored[0], scored[-1]
        outcome.champion_auc = compute_metrics(["roc_auc"], *vars(champion).values())["roc_auc"]
        if outcome.retrainings:
            outcome.new_auc = compute_metrics(["roc_auc"], *vars(newest).values())["roc_auc"]
            pair = (champion.y_pred, champion.y_score), (newest.y_pred, newest.y_score)
            outcome.gain = paired_gain_interval("roc_auc", champion.y_true, *pair, n_boot=1000)

    def copies(self) -> int:
        """Versions whose training set is an earlier version's: retrainings that could only copy."""
        registry = self.resources["registry"]
        seen, copies, version = set(), 0, 1
        while True:
            try:
                features = registry.get("loans", str(version)).tags["training_rows_hash"]
            except Exception:
                return copies
            copies += features in seen
            seen.add(features)
            version += 1


def run_scenario(name: str, world: World, labels_later: bool, rows: int, root: Path, seed: int) -> Outcome:
    from mlops_assets.serving.endpoint_state import stop
    from mlops_assets.serving.traffic import send_rows

    spec = json.loads(json.dumps(SPEC))
    if name.startswith("negligible"):
        rows = spec["monitoring"]["window"] = 1_000_000
    run, outcome = Run(root, spec, seed), Outcome()
    try:
        url = run.deploy()
        run.until_quiet(outcome, time.monotonic())  # the first ticks record what is there
        outcome.actions.clear()
        production = run.traffic(world, rows)
        started = time.monotonic()
        send_rows(url, production.drop(columns=["default"]), 1_000)
        wait_logged(run.log, rows)
        run.until_quiet(outcome, started)
        if labels_later:
            production[["loan_id", "default"]].to_csv(run.pipelines / "labels" / "batch-0001.csv", index=False)
            run.until_quiet(outcome, started)
        before = run.logged()
        send_rows(url, run.traffic(world, spec["monitoring"]["window"]).drop(columns=["default"]), 1_000)
        wait_logged(run.log, before + spec["monitoring"]["window"])
        outcome.next_report = run.until_quiet(outcome, started) or "no report"
        truth = run.traffic(world, 20_000)
        run.judge(outcome, truth)
        outcome.copies = run.copies()
    finally:
        stop(run.layout.endpoints, "loans")
        run.instance.dispose()
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="scenario names (a prefix is enough)")
    parser.add_argument("--rows", type=int, default=50_000, help="rows of production traffic per scenario")
    args = parser.parse_args()
    os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
    print(
        machine_line(
            dt.datetime.now().isoformat(timespec="minutes"), ("dagster", "mlflow", "scikit-learn"), os.getloadavg()[0]
        )
    )
    print(
        "| scenario | what the loop did | retrainings (copies) | roc_auc champion / new, on 20,000 fresh rows "
        "of the scenario's traffic | next drift report | s to new champion |"
    )
    print("|---|---|---|---|---|---|")
    for seed, (name, (world, labels_later)) in enumerate(SCENARIOS.items()):
        if args.only and not any(name.startswith(o) for o in args.only):
            continue
        with tempfile.TemporaryDirectory() as folder:
            outcome = run_scenario(name, world, labels_later, args.rows, Path(folder), seed)
        new = (
            ""
            if outcome.gain is None
            else f" / {outcome.new_auc:.4f} (gain {outcome.gain[0]:+.4f}, CI "
            f"{outcome.gain[1]:+.4f} to {outcome.gain[2]:+.4f})"
        )
        took = "" if np.isnan(outcome.seconds_to_new_champion) else f"{outcome.seconds_to_new_champion:.0f}"
        print(
            f"| {name} | {'; '.join(outcome.actions)} | {outcome.retrainings} ({outcome.copies}) | "
            f"{outcome.champion_auc:.4f}{new} | {outcome.next_report} | {took} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
