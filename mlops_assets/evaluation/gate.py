"""The deployment gate: absolute thresholds and the least gain over the champion, as one pure function."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlops_assets.model.metrics import gain, meets_threshold


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: list[str] = field(default_factory=list)  # one line per condition, failed or met


def evaluate_gate(
    thresholds: dict[str, float],
    min_gain: dict[str, float],
    challenger: dict[str, float],
    champion: dict[str, float] | None,
) -> GateResult:
    """Every condition must hold. Without a champion, the gain conditions do not apply (first model)."""
    reasons, passed = [], True
    for name, bound in thresholds.items():
        ok = meets_threshold(name, challenger[name], bound)
        passed &= ok
        relation = "≥" if meets_threshold(name, 1.0, 0.0) else "≤"
        reasons.append(f"{'ok' if ok else 'FAIL'}: {name} {challenger[name]:.4f} {relation} {bound}")
    for name, least in min_gain.items():
        if champion is None:
            reasons.append(f"ok: {name} gain not checked, there is no champion yet")
            continue
        improvement = gain(name, challenger[name], champion[name])
        ok = improvement >= least
        passed &= ok
        reasons.append(
            f"{'ok' if ok else 'FAIL'}: {name} gain over champion {improvement:+.4f} ≥ {least:+}"
            f" ({challenger[name]:.4f} vs {champion[name]:.4f})"
        )
    return GateResult(bool(passed), reasons)


def fairness_gate(figures, limits: dict[str, float]) -> GateResult:
    """Each fairness figure (``fairness.GroupFigure``) with a declared limit must not exceed it; an undefined
    figure (fewer than two groups with the rate) fails, as it cannot show the limit holds."""
    reasons, passed = [], True
    for figure in figures:
        if figure.name not in limits:
            continue
        limit = limits[figure.name]
        ok = bool(figure.value <= limit)  # False for NaN
        passed &= ok
        key = "mae" if figure.name == "error_gap" else None
        groups = ", ".join(f"{g}: {_rates(v, key)}" for g, v in figure.by_group.items())
        of_class = "" if figure.target_class is None else f"; positive class {figure.target_class!r}"
        reasons.append(
            f"fixed holdout: {'ok' if ok else 'FAIL'}: {figure.name} on {figure.column!r} {figure.value:.4f} ≤ {limit}"
            f" ({groups}{of_class})"
        )
    return GateResult(bool(passed), reasons)


def _rates(values: dict[str, float], key: str | None) -> str:
    shown = {k: v for k, v in values.items() if k != "rows" and (key is None or k == key)}
    return " ".join(f"{k} {v:.3f}" for k, v in shown.items()) + f" of {values['rows']} rows"


def combined(*results: GateResult) -> GateResult:
    """Every result must pass; their reasons in order."""
    return GateResult(all(r.passed for r in results), [reason for r in results for reason in r.reasons])
