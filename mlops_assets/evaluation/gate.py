"""The deployment gate: absolute thresholds and the least gain over the champion, as one pure function."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlops_assets.evaluation.metrics import gain, meets_threshold


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
