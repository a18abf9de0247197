"""What the endpoint serves at one moment, as one immutable object.

The app swaps the whole state as a single reference: a request reads it once and scores, routes and counts
with that one view, whatever reload or rollout comes next. The per-arm counters inside are the only mutable
part; they belong to the rollout they were created with.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field, replace

from mlops_assets.naming import CHALLENGER, CHAMPION
from mlops_assets.records import Rollout
from mlops_assets.serving.loading import LoadedModel
from mlops_assets.serving.routing import ArmStats

MAX_IGNORED_COLUMN_NAMES = 100  # counted by name in /admin/status; further names are counted together
OTHER_NAMES = "(other names)"


def _fresh_arms() -> dict[str, ArmStats]:
    return {CHAMPION: ArmStats(), CHALLENGER: ArmStats()}


@dataclass(frozen=True)
class ServingState:
    """The champion (``None`` before startup), and the running rollout with its challenger, if any."""

    current: LoadedModel | None = None
    rollout: Rollout | None = None
    challenger: LoadedModel | None = None
    rollout_started: str | None = None  # ISO time the running rollout started
    arms: dict[str, ArmStats] = field(default_factory=_fresh_arms)  # per arm since the rollout started

    def serving(self, champion: LoadedModel) -> ServingState:
        """``champion`` alone: a running rollout ends (its counters stay readable until the next one)."""
        return replace(self, current=champion, rollout=None, challenger=None)

    def rolling_out(self, rollout: Rollout, challenger: LoadedModel) -> ServingState:
        """The same champion, with ``challenger`` routed per ``rollout``; counters start at zero."""
        started = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        return replace(self, rollout=rollout, challenger=challenger, rollout_started=started, arms=_fresh_arms())

    def document(self) -> dict:
        """The state as ``/admin/status`` shows it."""
        rollout, current, challenger = self.rollout, self.current, self.challenger
        return {
            "model_version": current.version if current else None,
            "fast_path_check": current.fast_path_check if current else None,
            "challenger_fast_path_check": challenger.fast_path_check if challenger else None,
            "rollout": None if rollout is None else {**asdict(rollout), "started_at": self.rollout_started},
            "arms": {arm: asdict(stats) for arm, stats in self.arms.items()},
        }


@dataclass
class RequestCounts:
    """Scoring requests accepted and rejected (400: a body the schema cannot take). A feature that stops
    arriving is rejected, never logged: these counts are how the drift report still sees it."""

    accepted: int = 0
    rejected: int = 0
    last_rejection: str = ""
    invalid_rows: int = 0  # scored under on_invalid: flag although they break the schema
    ignored_columns: dict[str, int] = field(default_factory=dict)  # requests that sent a column the model ignores

    def ignored(self, names: set) -> None:
        for name in names:
            key = str(name)[:100]
            if key not in self.ignored_columns and len(self.ignored_columns) >= MAX_IGNORED_COLUMN_NAMES:
                key = OTHER_NAMES
            self.ignored_columns[key] = self.ignored_columns.get(key, 0) + 1
