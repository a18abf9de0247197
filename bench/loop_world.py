"""The loop bench's world: a synthetic loan-default pipeline, how its production rows are drawn and labelled,
and the scenarios, each a list of events with known ground truth.

The true model is logistic in debt_ratio, log(income), the square of utilization's distance from 0.5 and
employment; the spec's LogisticRegression sees income and utilization linearly. A shift of debt_ratio is
therefore a well-specified covariate shift (the champion stays right: no retraining should be promoted), a
shift of utilization's mean a misspecified one (the best linear fit moves: weighting toward the new window
lifts roc_auc, about 0.73 -> 0.80 at +0.5 sd on this world).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

PIPELINE = "loans"
TARGET = "default"
ID = "loan_id"
EMPLOYMENT = np.array(["salaried", "self_employed", "retired"])
TRAINING_ROWS = 20_000
WINDOWS_PER_BURST = 5  # monitoring.window is --rows / 5: a burst of --rows rows is five drift windows


@dataclass(frozen=True)
class World:
    """How production rows are drawn and labelled in one scenario."""

    debt_shift: float = 0.0  # debt_ratio's mean, in standard deviations (0.12)
    utilization_spread: float = 1.0
    utilization_shift: float = 0.0  # utilization's mean, in standard deviations (0.2)
    income_factor: float = 1.0
    log_income_shift: float = 0.0  # log-income's mean, in standard deviations (0.4)
    new_category_share: float = 0.0  # employment "gig", outside the schema's isin
    concept_flip: bool = False  # debt_ratio's effect on default reversed
    null_column: str | None = None  # a feed that stopped filling this column


def draw(world: World, rows: int, rng: np.random.Generator, start_id: int) -> pd.DataFrame:
    income = rng.lognormal(10.5 + 0.4 * world.log_income_shift, 0.4, rows) * world.income_factor
    frame = pd.DataFrame(
        {
            ID: [f"L{i:08d}" for i in range(start_id, start_id + rows)],
            "income": income,
            "debt_ratio": rng.normal(0.35 + 0.12 * world.debt_shift, 0.12, rows),
            "utilization": 0.5 + 0.2 * world.utilization_shift + rng.normal(0, 0.2, rows) * world.utilization_spread,
            "age": np.clip(rng.normal(42, 12, rows), 18, 100).round(),
            "employment": rng.choice(EMPLOYMENT, rows, p=[0.6, 0.3, 0.1]).astype(object),
        }
    )
    gig = rng.random(rows) < world.new_category_share
    frame.loc[gig, "employment"] = "gig"
    debt = (frame["debt_ratio"] - 0.35) / 0.12 * (-1.5 if world.concept_flip else 1.5)
    logit = -1.3 + debt - 0.8 * (np.log(frame["income"]) - 10.5) / 0.4 + 2.0 * (frame["utilization"] - 0.5) ** 2 / 0.04
    logit += np.select([frame["employment"] == "self_employed", frame["employment"] == "gig"], [0.5, 1.5], 0.0)
    frame[TARGET] = (rng.random(rows) < 1 / (1 + np.exp(-(logit - 1.0)))).astype(int)
    if world.null_column:
        frame[world.null_column] = np.nan
    return frame


def build_spec(rows: int, webhook: str, interval_seconds: int | None) -> dict:
    """The scenario's spec: sensors running at their real interval (the spec's default unless given), no
    cooldown, a budget that never binds, every alert to ``webhook``, defaults for ``training`` and for
    ``deployment.on_invalid`` (reject)."""
    retraining: dict = {"cooldown_minutes": 0, "daily_budget": 10, "sensors": "running"}
    if interval_seconds is not None:
        retraining["interval_seconds"] = interval_seconds
    return {
        "name": PIPELINE,
        "task": "binary",
        "target": TARGET,
        "id_column": ID,
        "source": {"path": "data/train.parquet", "labels": {"path": "labels", "id_column": ID}},
        "schema": {
            "columns": {
                ID: {"dtype": "str"},
                "income": {"dtype": "float", "gt": 0},
                "debt_ratio": {"dtype": "float"},
                "utilization": {"dtype": "float"},
                "age": {"dtype": "float", "ge": 18, "le": 100},
                "employment": {"dtype": "str", "isin": EMPLOYMENT.tolist()},
                TARGET: {"dtype": "int", "isin": [0, 1]},
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
        "monitoring": {"window": max(rows // WINDOWS_PER_BURST, 500), "min_rows": 500},
        "retraining": retraining,
        "alerts": [{"webhook": webhook}],
    }


@dataclass(frozen=True)
class Traffic:
    """One event: ``share`` x --rows rows of ``world`` sent through the endpoint, ``batch`` rows a request."""

    world: World
    share: float = 1.0
    batch: int = 1_000


@dataclass(frozen=True)
class Labels:
    """One event: a label batch for the last traffic, up to ``share`` of its rows labelled in all (the rows
    after the previous batch's), ``flipped`` of this batch's labels wrong."""

    share: float
    flipped: float = 0.0


@dataclass(frozen=True)
class Scenario:
    name: str
    events: tuple[Traffic | Labels, ...]
    expect_better: bool = False  # a better champion is possible: judged on the 3-minute goal
    recovers_flip: bool = False  # judged on "the flip recovered with default settings"
    breaks_feed: bool = False  # judged on "the break alerted within one check interval"

    @property
    def last_traffic(self) -> Traffic:
        return [e for e in self.events if isinstance(e, Traffic)][-1]


STABLE = World()
MISSPECIFIED = World(utilization_shift=1.0)
TRICKLE = (Labels(0.01), Labels(0.05), Labels(0.30))  # 500, then 2,500, then 15,000 of 50,000 rows labelled
SCENARIOS = [
    Scenario("burst", (Traffic(MISSPECIFIED),), expect_better=True),
    Scenario(
        "gradual",
        tuple(Traffic(World(log_income_shift=s), share=0.2) for s in (0.02, 0.05, 0.15, 0.35, 0.6)),
    ),
    Scenario("labels trickle", (Traffic(STABLE), *TRICKLE)),
    Scenario("noisy labels", (Traffic(STABLE), Labels(0.30, flipped=0.1))),
    Scenario("concept flip", (Traffic(World(concept_flip=True)), *TRICKLE), expect_better=True, recovers_flip=True),
    Scenario("well-specified shift", (Traffic(World(debt_shift=0.5), share=0.2),)),
    Scenario("misspecified shift", (Traffic(World(utilization_shift=0.5), share=0.2),), expect_better=True),
    # one row a request, as a client sends them: a request with a 'gig' row is a 400 under on_invalid: reject
    Scenario("unseen", (Traffic(World(new_category_share=0.2), batch=1), Labels(1.0)), breaks_feed=True),
    Scenario("missing column", (Traffic(World(null_column="utilization")),), breaks_feed=True),
]


def write_training_data(pipelines: Path, rng: np.random.Generator) -> None:
    (pipelines / "data").mkdir(parents=True)
    (pipelines / "labels").mkdir()
    draw(STABLE, TRAINING_ROWS, rng, 0).to_parquet(pipelines / "data" / "train.parquet")


def label_batch(traffic: pd.DataFrame, start: float, share: float, flipped: float, rng) -> pd.DataFrame:
    """The labels of ``traffic``'s rows from ``start`` to ``share`` of them, ``flipped`` of them wrong."""
    rows = traffic.iloc[int(start * len(traffic)) : int(share * len(traffic))][[ID, TARGET]].copy()
    wrong = rng.random(len(rows)) < flipped
    rows.loc[wrong, TARGET] = 1 - rows.loc[wrong, TARGET]
    return rows
