"""Rollout routing between the champion and a candidate: which arm answers, and the canary's verdict.

Pure functions and small records; the server holds one ``Rollout`` at a time and swaps it atomically.

>>> rollout = Rollout(mode="canary", candidate_version="3", share=0.25)
>>> choose_arm(rollout, key="customer-42") == choose_arm(rollout, key="customer-42")
True
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from mlops_assets.gate import evaluate_gate

CHAMPION, CANDIDATE = "champion", "candidate"


@dataclass(frozen=True)
class Rollout:
    """``canary``: ``share`` of requests go to the candidate (sticky by key when a key is sent);
    ``ab``: the same split, for a person to decide; ``shadow``: the candidate scores copies, never answers."""

    mode: str
    candidate_version: str
    share: float = 0.1
    sticky_key: str | None = None


def choose_arm(rollout: Rollout | None, key: str | None = None) -> str:
    """The arm that answers; a given key always lands on the same arm for a given share."""
    if rollout is None or rollout.mode == "shadow":
        return CHAMPION
    draw = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 2**32 if key is not None else random.random()
    return CANDIDATE if draw < rollout.share else CHAMPION


@dataclass
class ArmStats:
    """Counters of one arm since the rollout started."""

    requests: int = 0
    rows: int = 0
    errors: int = 0
    disagreements: int = 0  # shadow: rows where the candidate's answer differed from the champion's

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class CanaryVerdict:
    promote: bool
    reasons: list[str] = field(default_factory=list)


def canary_verdict(
    champion: ArmStats,
    candidate: ArmStats,
    min_requests: int,
    max_error_rate_increase: float,
    metric: str | None = None,
    champion_metric: float | None = None,
    candidate_metric: float | None = None,
    min_gain: float = 0.0,
) -> CanaryVerdict | None:
    """Promote or roll back once the candidate has answered ``min_requests``; ``None`` until then.

    The candidate must not fail more often than the champion by over ``max_error_rate_increase``, and,
    where labels give both arms a metric, must gain at least ``min_gain`` on it.
    """
    if candidate.requests < min_requests:
        return None
    reasons, promote = [], True
    increase = candidate.error_rate - champion.error_rate
    ok = increase <= max_error_rate_increase
    promote &= ok
    reasons.append(
        f"{'ok' if ok else 'FAIL'}: error rate {candidate.error_rate:.4f} vs champion {champion.error_rate:.4f} "
        f"(allowed increase {max_error_rate_increase})"
    )
    if metric is not None and champion_metric is not None and candidate_metric is not None:
        online = evaluate_gate({}, {metric: min_gain}, {metric: candidate_metric}, {metric: champion_metric})
        promote &= online.passed
        reasons += [f"online {reason}" for reason in online.reasons]
    return CanaryVerdict(bool(promote), reasons)
