"""Challenger against champion on every holdout a version has, and the one that decides the gate.

- ``fixed``: the source's holdout rows, the same for every version of a source.
- ``weighted``: the fixed holdout under the importance weights of a drift answered without labels: how
  both models do on the drifted distribution.
- ``recent``: labelled production rows from the newest window that no version trained on: today's data.

One holdout stands for today's traffic and decides: the recent one once it has
``training.recent_holdout.min_rows`` rows and the gate's metrics are defined on it, else the weighted one,
else the fixed one. With a champion, the challenger must be better there on the primary metric: the paired
interval of its gain lies above 0 (``evaluation.gate.must_beat_champion``, on by default), so a copy of the
champion, a gain of exactly 0 or one within noise keeps the champion. Declared thresholds and least gains add
to that rule. The fixed holdout still guards against regressions (declared conditions, and not confidently
worse on the primary metric) while the concept has not changed, which ``data.concept`` tells apart from label
noise; after a change it reports, it does not guard. Without a champion (a first model) only thresholds apply.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlops_assets.data.concept import ConceptTest, concept_test, spec_inputs
from mlops_assets.data.training_set import IMPORTANCE
from mlops_assets.evaluation.gate import GateResult, evaluate_gate
from mlops_assets.model.metrics import compute_metrics
from mlops_assets.model.pipeline_model import PipelineModel

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec

ORDER = ("recent", "weighted", "fixed")  # which holdout stands for today's traffic, first that can decide


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
    gains: dict[str, list[float]] = field(default_factory=dict)  # metric -> [gain, low, high], with a champion
    decides: bool = False
    note: str = ""


@dataclass(frozen=True)
class Judgement:
    comparisons: list[HoldoutComparison]
    gate: GateResult
    deciding: str = "fixed"  # the holdout that stood for today's traffic: "recent", "weighted" or "fixed"
    concept: dict[str, Any] | None = None  # the concept test of the recent holdout against the fixed one

    def by_name(self) -> dict[str, HoldoutComparison]:
        return {c.name: c for c in self.comparisons}

    def as_json(self) -> dict[str, Any]:
        return {c.name: asdict(c) for c in self.comparisons}

    def markdown(self) -> str:
        """The holdouts side by side (rows, each model's metrics, the gains' intervals), which one decided, and
        the notes."""
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
        lines += ["", f"Decided on the {self.deciding} holdout ({self.by_name()[self.deciding].rows} labelled rows)."]
        notes = [f"- {c.name}: {c.note}" for c in self.comparisons if c.note]
        return "\n".join(lines + (["", *notes] if notes else []))


def score(model: PipelineModel, frame: pd.DataFrame, target: str) -> Scored:
    prediction = model.predict(frame)
    y = model.encode_target(np.asarray(frame[target]))
    labels = prediction.labels if model.classes is None else model.encode_target(prediction.labels)
    return Scored(y, labels, prediction.proba)


def judge(
    spec: PipelineSpec,
    challenger: PipelineModel,
    champion: PipelineModel | None,
    holdout: pd.DataFrame,
    recent: pd.DataFrame,
    champion_version: str | None = None,
    automatic: bool = True,
) -> Judgement:
    """The gate's verdict on every holdout the version has; ``champion_version`` names the champion in the
    reasons. ``must_beat_champion`` holds the loop's own retrainings (``automatic``) to a better model; a run a
    person started is judged by the declared conditions alone: the person decided to replace the champion."""
    if not automatic and spec.evaluation.gate.must_beat_champion:
        gate = spec.evaluation.gate.model_copy(update={"must_beat_champion": False})
        spec = spec.model_copy(update={"evaluation": spec.evaluation.model_copy(update={"gate": gate})})
    on_holdout = _score_both(spec, challenger, champion, holdout)  # scored once: fixed and weighted share it
    compared = {"fixed": _compare("fixed", spec, *on_holdout, None)}
    if IMPORTANCE in holdout.columns:
        compared["weighted"] = _compare("weighted", spec, *on_holdout, holdout[IMPORTANCE].to_numpy())
    if len(recent):
        compared["recent"] = _compare("recent", spec, *_score_both(spec, challenger, champion, recent), None)
    deciding, compared = _deciding(spec, compared, champion is not None)
    the_champion = f"champion v{champion_version}" if champion_version else "the champion"
    conditions = [_deciding_gate(spec, compared[deciding], the_champion)]
    concept = None
    if deciding == "recent":
        concept = concept_test(
            holdout,
            recent,
            spec_inputs(spec),
            spec.target,
            spec.task,
            spec.training.recent_holdout.confidence,
            spec.split.seed,
        )
        compared["fixed"] = replace(compared["fixed"], note=concept.reason)
    if deciding != "fixed":
        conditions.append(_fixed_guard(spec, compared["fixed"], deciding, concept, the_champion))
    comparisons = [replace(c, decides=c.name == deciding) for c in compared.values()]
    gate = GateResult(all(c.passed for c in conditions), [r for c in conditions for r in c.reasons])
    return Judgement(comparisons, gate, deciding, concept.as_json() if concept else None)


def _score_both(spec: PipelineSpec, challenger, champion, frame) -> tuple[Scored, Scored | None]:
    return score(challenger, frame, spec.target), None if champion is None else score(champion, frame, spec.target)


def _compare(name, spec: PipelineSpec, mine: Scored, theirs: Scored | None, weights) -> HoldoutComparison:
    """Both models' metrics on one holdout, and with a champion the paired interval of each gain the gate
    reads (the primary metric's and every ``min_gain``'s)."""
    from mlops_assets.evaluation.confidence import paired_gain_interval

    metrics = compute_metrics(spec.metrics, mine.y_true, mine.y_pred, mine.y_score, sample_weight=weights)
    if theirs is None:
        return HoldoutComparison(name, len(mine.y_true), metrics, None)
    champion_metrics = compute_metrics(
        spec.metrics, theirs.y_true, theirs.y_pred, theirs.y_score, sample_weight=weights
    )
    gains = {}
    for metric in dict.fromkeys([spec.primary_metric, *spec.evaluation.gate.min_gain]):
        interval = paired_gain_interval(
            metric,
            mine.y_true,
            (theirs.y_pred, theirs.y_score),
            (mine.y_pred, mine.y_score),
            sample_weight=weights,
            confidence=spec.training.recent_holdout.confidence,
        )
        gains[metric] = [float(v) for v in interval]
    return HoldoutComparison(name, len(mine.y_true), metrics, champion_metrics, gains)


def _deciding(
    spec: PipelineSpec, compared: dict[str, HoldoutComparison], has_champion: bool
) -> tuple[str, dict[str, HoldoutComparison]]:
    """The first holdout of ``ORDER`` that can decide, and the comparisons with a note on those passed over."""
    least = spec.training.recent_holdout.min_rows
    for name in ORDER[:-1]:
        if name not in compared:
            continue
        comparison = compared[name]
        why = _undefined(spec, comparison, has_champion)
        if name == "recent" and comparison.rows < least:
            why = f"{comparison.rows} rows, fewer than training.recent_holdout.min_rows ({least})"
        if not why:
            return name, compared
        compared = {**compared, name: replace(comparison, note=f"{why}: reported, not deciding")}
    return "fixed", compared


def _undefined(spec: PipelineSpec, comparison: HoldoutComparison, has_champion: bool) -> str:
    """Why a holdout cannot decide although it has rows ("" when it can): a metric the gate needs is
    undefined on it (roc_auc over one class, r2 over a constant target), and an undefined value would pass
    or fail every challenger alike."""
    gate = spec.evaluation.gate
    needed = {*gate.thresholds, *(gate.min_gain if has_champion else {})}
    if has_champion and gate.must_beat_champion:
        needed.add(spec.primary_metric)
    values = [comparison.challenger[m] for m in needed] + [comparison.champion[m] for m in needed if has_champion]
    values += [bound for m in needed for bound in comparison.gains.get(m, [])]
    if all(math.isfinite(v) for v in values):
        return ""
    return f"{', '.join(sorted(needed))} undefined on these rows (one class, or a constant target)"


def _deciding_gate(spec: PipelineSpec, deciding: HoldoutComparison, the_champion: str) -> GateResult:
    """On the deciding holdout: better than the champion, then the declared thresholds and least gains (on
    the recent holdout a least gain fails only when the interval lies wholly below it, as a canary does; on
    the others the point gain must reach it)."""
    gate = spec.evaluation.gate
    reasons, passed = [], True
    if deciding.champion is not None and gate.must_beat_champion:
        ok, reason = _better(spec.primary_metric, deciding, the_champion)
        passed &= ok
        reasons.append(reason)
    min_gain = {} if deciding.name == "recent" else gate.min_gain
    declared = _labelled(
        evaluate_gate(gate.thresholds, min_gain, deciding.challenger, deciding.champion), deciding.name
    )
    passed &= declared.passed
    reasons += declared.reasons
    if deciding.name == "recent":
        least_gains = _least_gains(gate.min_gain, deciding)
        passed &= least_gains.passed
        reasons += least_gains.reasons
    return GateResult(bool(passed), reasons)


def _better(metric: str, comparison: HoldoutComparison, the_champion: str) -> tuple[bool, str]:
    gain_, low, high = comparison.gains[metric]
    ok = bool(low > 0)  # an interval touching 0, or a gain of exactly 0, is no evidence of a better model
    what = "better than" if ok else "not better than"
    figures = f"{metric} gain {_interval(gain_, low, high)}"
    return ok, f"{'ok' if ok else 'FAIL'}: {what} {the_champion} on the {comparison.name} holdout: {figures}"


def _least_gains(min_gain: dict[str, float], recent: HoldoutComparison) -> GateResult:
    reasons, passed = [], True
    for metric, least in min_gain.items():
        if recent.champion is None:
            reasons.append(f"ok: {metric} gain not checked, there is no champion yet")
            continue
        gain_, low, high = recent.gains[metric]
        ok = bool(high >= least)  # defined: an undefined metric keeps the recent holdout from deciding
        passed &= ok
        reasons.append(
            f"{'ok' if ok else 'FAIL'}: {metric} gain over champion {_interval(gain_, low, high)} "
            f"must not be confidently under {least:+}"
        )
    return _labelled(GateResult(bool(passed), reasons), "recent")


def _fixed_guard(
    spec: PipelineSpec, fixed: HoldoutComparison, deciding: str, concept: ConceptTest | None, the_champion: str
):
    """The fixed holdout beside the deciding one. Beside the weighted holdout it must meet the declared
    thresholds (the same rows, unweighted: a floor that wrong weights cannot lift), not the least gains: a
    model adapted to today's inputs gives up some of yesterday's where the shift is misspecified, and its gain
    over the champion is measured where it matters, on the weighted rows. Beside the recent holdout it guards
    against regressions while the concept holds: the declared least gains, and not confidently worse on the
    primary metric."""
    gate = spec.evaluation.gate
    if deciding == "weighted":
        return _labelled(evaluate_gate(gate.thresholds, {}, fixed.challenger, fixed.champion), "fixed")
    if concept is not None and concept.changed:
        return GateResult(True, ["fixed holdout: reported, not a guard: the concept changed (see its note)"])
    guard = _labelled(evaluate_gate({}, gate.min_gain, fixed.challenger, fixed.champion), "fixed")
    if fixed.champion is None or not gate.must_beat_champion:
        return guard
    metric = spec.primary_metric
    gain_, low, high = fixed.gains[metric]
    ok = not high < 0  # NaN (undefined on the fixed holdout) does not block: the deciding holdout decided
    verdict = "not confidently worse than" if ok else "confidently worse than"
    reason = f"{'ok' if ok else 'FAIL'}: {verdict} {the_champion}: {metric} gain {_interval(gain_, low, high)}"
    return GateResult(guard.passed and ok, [*guard.reasons, f"fixed holdout: {reason}"])


def _interval(value: float, low: float, high: float) -> str:
    return f"{value:+.4f} (CI {low:+.4f} to {high:+.4f})"


def _labelled(gate: GateResult, holdout: str) -> GateResult:
    return GateResult(gate.passed, [f"{holdout} holdout: {r}" for r in gate.reasons])
