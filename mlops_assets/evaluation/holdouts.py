"""Challenger against champion on every holdout a version has, and which of them decides the gate.

- ``fixed``: the source's holdout rows, the same for every version of a source.
- ``weighted``: the fixed holdout under the importance weights of a drift answered without labels: how
  both models do on the drifted distribution.
- ``recent``: labelled production rows from the newest window that no version trained on: today's data.

The recent holdout decides once it has ``training.recent_holdout.min_rows``: its gain conditions pass
unless the paired interval of the gain lies wholly below the least gain (as a canary: a challenger is
refused when confidently worse, not on noise). The fixed holdout still guards against regressions while
the concept has not changed, that is while the champion is not confidently worse on today's data than on
it. Without a deciding recent holdout the fixed holdout decides, and the weighted one must pass as well.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.data.training_set import IMPORTANCE
from mlops_assets.evaluation.gate import GateResult, evaluate_gate
from mlops_assets.evaluation.metrics import compute_metrics, meets_threshold
from mlops_assets.model.pipeline_model import PipelineModel


@dataclass(frozen=True)
class Scored:
    """One model's answers on a holdout, as the metrics take them."""

    y_true: np.ndarray
    y_pred: np.ndarray
    y_score: np.ndarray | None


@dataclass(frozen=True)
class HoldoutComparison:
    name: str  # "fixed", "weighted" or "recent"
    rows: int
    challenger: dict[str, float]
    champion: dict[str, float] | None
    gains: dict[str, list[float]] = field(default_factory=dict)  # metric -> [gain, low, high] (recent)
    decides: bool = False
    note: str = ""


@dataclass(frozen=True)
class Judgement:
    comparisons: list[HoldoutComparison]
    gate: GateResult

    def by_name(self) -> dict[str, HoldoutComparison]:
        return {c.name: c for c in self.comparisons}

    def as_json(self) -> dict[str, Any]:
        return {c.name: asdict(c) for c in self.comparisons}

    def markdown(self) -> str:
        """The holdouts side by side: rows, each model's metrics, the recent gain's interval."""
        names = list(self.comparisons[0].challenger)
        lines = ["| holdout | rows | decides | " + " | ".join(names) + " |", "|---|---|---|" + "---|" * len(names)]
        for c in self.comparisons:
            cells = []
            for m in names:
                champion = "" if c.champion is None else f" vs {c.champion[m]:.4f}"
                interval = c.gains.get(m)
                gain = (
                    ""
                    if interval is None
                    else f" (gain {interval[0]:+.4f}, CI {interval[1]:+.4f} to {interval[2]:+.4f})"
                )
                cells.append(f"{c.challenger[m]:.4f}{champion}{gain}")
            lines.append(f"| {c.name} | {c.rows} | {'yes' if c.decides else 'no'} | " + " | ".join(cells) + " |")
        notes = [f"- {c.name}: {c.note}" for c in self.comparisons if c.note]
        return "\n".join(lines + (["", *notes] if notes else []))


def score(model: PipelineModel, frame: pd.DataFrame, target: str) -> Scored:
    prediction = model.predict(frame)
    y = model.encode_target(np.asarray(frame[target]))
    labels = prediction.labels if model.classes is None else model.encode_target(prediction.labels)
    return Scored(y, labels, prediction.proba)


def judge(
    spec, challenger: PipelineModel, champion: PipelineModel | None, holdout: pd.DataFrame, recent: pd.DataFrame
) -> Judgement:
    gate_spec = spec.evaluation.gate
    on_holdout = _score_both(spec, challenger, champion, holdout)  # scored once: fixed and weighted share it
    fixed = _compare("fixed", spec, *on_holdout, None)
    comparisons, conditions = [fixed], []
    recent_settings = spec.training.recent_holdout
    if IMPORTANCE in holdout.columns:
        weighted = _compare("weighted", spec, *on_holdout, holdout[IMPORTANCE].to_numpy())
        comparisons.append(weighted)
    undefined = ""
    if len(recent):
        on_recent = _score_both(spec, challenger, champion, recent)
        comparisons.append(_compare_recent(spec, *on_recent))
        undefined = _undefined(spec, comparisons[-1])
    deciding_recent = len(recent) >= recent_settings.min_rows and not undefined
    if deciding_recent:
        conditions.append(_recent_gate(spec, comparisons[-1]))
        changed = _concept_changed(spec, fixed, on_recent[1])
        if changed:
            comparisons[0] = HoldoutComparison(**{**asdict(fixed), "note": changed})
        else:
            conditions.append(
                _labelled(evaluate_gate({}, gate_spec.min_gain, fixed.challenger, fixed.champion), "fixed")
            )
    else:
        if len(recent):
            why = undefined or (
                f"{len(recent)} rows, fewer than training.recent_holdout.min_rows ({recent_settings.min_rows})"
            )
            comparisons[-1] = HoldoutComparison(**{**asdict(comparisons[-1]), "note": f"{why}: reported, not deciding"})
        for comparison in comparisons:
            if comparison.name in ("fixed", "weighted"):
                gate = evaluate_gate(
                    gate_spec.thresholds, gate_spec.min_gain, comparison.challenger, comparison.champion
                )
                conditions.append(_labelled(gate, comparison.name))
    deciding = {"recent"} if deciding_recent else {"fixed", "weighted"}
    comparisons = [HoldoutComparison(**{**asdict(c), "decides": c.name in deciding}) for c in comparisons]
    passed = all(c.passed for c in conditions)
    return Judgement(comparisons, GateResult(passed, [r for c in conditions for r in c.reasons]))


def _score_both(spec, challenger, champion, frame) -> tuple[Scored, Scored | None]:
    return score(challenger, frame, spec.target), None if champion is None else score(champion, frame, spec.target)


def _compare(name, spec, mine: Scored, theirs: Scored | None, weights) -> HoldoutComparison:
    metrics = compute_metrics(spec.metrics, mine.y_true, mine.y_pred, mine.y_score, sample_weight=weights)
    champion_metrics = None
    if theirs is not None:
        champion_metrics = compute_metrics(
            spec.metrics, theirs.y_true, theirs.y_pred, theirs.y_score, sample_weight=weights
        )
    return HoldoutComparison(name, len(mine.y_true), metrics, champion_metrics)


def _undefined(spec, recent: HoldoutComparison) -> str:
    """Why the recent holdout cannot decide although it has rows ("" when it can): a metric the gate needs is
    undefined on it (roc_auc over one class, r2 over a constant target), and an undefined value would pass
    or fail every challenger alike."""
    needed = {*spec.evaluation.gate.thresholds, *_gain_metrics(spec)}
    values = [recent.challenger[m] for m in needed] + [recent.champion[m] for m in needed if recent.champion]
    values += [bound for m in needed for bound in recent.gains.get(m, [])]
    if all(math.isfinite(v) for v in values):
        return ""
    return f"{', '.join(sorted(needed))} undefined on these rows (one class, or a constant target)"


def _compare_recent(spec, mine: Scored, theirs: Scored | None) -> HoldoutComparison:
    from mlops_assets.evaluation.confidence import paired_gain_interval

    compared = _compare("recent", spec, mine, theirs, None)
    if theirs is None:
        return compared
    gains = {}
    for metric in _gain_metrics(spec):
        gains[metric] = list(
            paired_gain_interval(
                metric,
                mine.y_true,
                (theirs.y_pred, theirs.y_score),
                (mine.y_pred, mine.y_score),
                confidence=spec.training.recent_holdout.confidence,
            )
        )
    return HoldoutComparison(**{**asdict(compared), "gains": gains})


def _gain_metrics(spec) -> dict[str, float]:
    """The least gain per metric the recent holdout checks: the gate's, else none worse on the primary."""
    return dict(spec.evaluation.gate.min_gain) or {spec.primary_metric: 0.0}


def _recent_gate(spec, recent: HoldoutComparison) -> GateResult:
    thresholds = evaluate_gate(spec.evaluation.gate.thresholds, {}, recent.challenger, recent.champion)
    reasons, passed = list(thresholds.reasons), thresholds.passed
    for metric, least in _gain_metrics(spec).items():
        if recent.champion is None:
            reasons.append(f"ok: {metric} gain not checked, there is no champion yet")
            continue
        gain, low, high = recent.gains[metric]
        ok = bool(high >= least)  # defined: an undefined metric keeps the recent holdout from deciding
        passed &= ok
        reasons.append(
            f"{'ok' if ok else 'FAIL'}: {metric} gain over champion {gain:+.4f} "
            f"(CI {low:+.4f} to {high:+.4f}) must not be confidently under {least:+}"
        )
    return _labelled(GateResult(bool(passed), reasons), "recent")


def _concept_changed(spec, fixed: HoldoutComparison, theirs: Scored | None) -> str:
    """Why the fixed holdout no longer speaks for today ("" while it does): the champion (``theirs``, scored
    on the recent holdout) is confidently worse there than on the fixed one."""
    from mlops_assets.evaluation.confidence import metric_interval

    if theirs is None or fixed.champion is None:
        return ""
    metric = spec.primary_metric
    value, low, high = metric_interval(metric, theirs.y_true, theirs.y_pred, theirs.y_score)
    bound = high if meets_threshold(metric, 1.0, 0.0) else low
    if meets_threshold(metric, bound, fixed.champion[metric]):
        return ""
    return (
        f"the concept changed: champion {metric} {value:.4f} (CI {low:.4f}-{high:.4f}) on today's data vs "
        f"{fixed.champion[metric]:.4f} here; the fixed holdout reports, it does not decide"
    )


def _labelled(gate: GateResult, holdout: str) -> GateResult:
    return GateResult(gate.passed, [f"{holdout} holdout: {r}" for r in gate.reasons])
