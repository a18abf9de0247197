"""Rollout routing between the champion and the challenger: which arm answers, and the canary's verdict.

The arms are named by the registry aliases (``CHAMPION``, ``CHALLENGER``); the ``Rollout`` record itself is
``records.Rollout``, as the ``EndpointDeployer`` contract takes it.

Pure functions and small records; the server holds one ``Rollout`` at a time and swaps it atomically.

>>> rollout = Rollout(mode=Strategy.canary, challenger_version="3", share=0.25)
>>> choose_arm(rollout, key="customer-42") == choose_arm(rollout, key="customer-42")
True
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field, fields
from typing import Any

from mlops_assets.naming import CHALLENGER, CHAMPION, STRATEGIES, Strategy
from mlops_assets.records import Rollout

MODES = tuple(s for s in STRATEGIES if s != Strategy.replace)  # what a rollout can be: the strategies but replace


def rollout_from_json(document: Any) -> Rollout:
    """The ``Rollout`` an admin request's body describes; ``ValueError`` naming the first field that is wrong.

    >>> rollout_from_json({"mode": "canary", "challenger_version": "3", "share": "x"})
    Traceback (most recent call last):
    ValueError: share must be a number between 0 and 1 (both excluded); got 'x'
    """
    names = [f.name for f in fields(Rollout)]
    if not isinstance(document, dict):
        raise ValueError(f"the body must be a JSON object with the fields {names}")
    unknown = sorted(str(name) for name in document if name not in names)
    if unknown:
        raise ValueError(f"unknown field(s) {unknown}; a rollout has the fields {names}")
    mode, version = document.get("mode"), document.get("challenger_version")
    share, sticky_key = document.get("share", Rollout.share), document.get("sticky_key")
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}; got {mode!r}")
    if not isinstance(version, str) or not version.strip():
        raise ValueError(f'challenger_version must be a registered version as a string, such as "3"; got {version!r}')
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < 1:
        raise ValueError(f"share must be a number between 0 and 1 (both excluded); got {share!r}")
    if sticky_key is not None and (not isinstance(sticky_key, str) or not sticky_key):
        raise ValueError(f"sticky_key must be a column name or null; got {sticky_key!r}")
    return Rollout(Strategy(mode), version, float(share), sticky_key)


def choose_arm(rollout: Rollout | None, key: str | None = None) -> str:
    """The arm that answers; a given key always lands on the same arm for a given share."""
    if rollout is None or rollout.mode == Strategy.shadow:
        return CHAMPION
    draw = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 2**32 if key is not None else random.random()
    return CHALLENGER if draw < rollout.share else CHAMPION


@dataclass
class ArmStats:
    """Counters of one arm since the rollout started."""

    requests: int = 0
    rows: int = 0
    errors: int = 0
    disagreements: int = 0  # shadow: rows where the challenger's answer differed from the champion's

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class CanaryVerdict:
    promote: bool
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class OnlineComparison:
    """The primary metric of both arms on their labelled predictions, and the challenger's gain over the
    champion (positive when better) with its interval."""

    metric: str
    champion: float
    challenger: float
    gain: float
    gain_low: float
    gain_high: float


def canary_verdict(
    champion: ArmStats,
    challenger: ArmStats,
    min_requests: int,
    max_error_rate_increase: float,
    online: OnlineComparison | None = None,
    min_gain: float = 0.0,
) -> CanaryVerdict | None:
    """Promote or roll back once the challenger has answered ``min_requests``; ``None`` until then.

    The challenger must not fail more often than the champion by over ``max_error_rate_increase``, and,
    where labels give both arms a metric, the interval of its gain must reach ``min_gain``: a canary sees
    few labelled rows, so it is rolled back when it is confidently short of that, not on noise.
    """
    if challenger.requests < min_requests:
        return None
    increase = challenger.error_rate - champion.error_rate
    promote = increase <= max_error_rate_increase
    reasons = [
        f"{'ok' if promote else 'FAIL'}: error rate {challenger.error_rate:.4f} vs champion {champion.error_rate:.4f} "
        f"(allowed increase {max_error_rate_increase})"
    ]
    if online is not None:
        ok = online.gain_high >= min_gain
        promote &= ok
        reasons.append(
            f"{'ok' if ok else 'FAIL'}: online {online.metric} {online.challenger:.4f} vs champion "
            f"{online.champion:.4f}, gain {online.gain:+.4f} (CI {online.gain_low:+.4f} to {online.gain_high:+.4f}); "
            f"the interval must reach {min_gain:+}"
        )
    return CanaryVerdict(bool(promote), reasons)
