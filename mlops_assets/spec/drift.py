"""The thresholds of the drift decision: the spec's ``monitoring.drift`` fields default to ``DriftConfig``'s, and
``monitoring.drift.verdict.compute_drift`` decides by one. Pure: loading a spec imports no statistics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DriftConfig:
    """Thresholds of the drift decision; ``overrides`` maps a feature to its own thresholds
    (keys ``psi``, ``wasserstein``, ``js``). A numeric feature's missing share is held to its ``js``."""

    bins: int = 10
    psi_threshold: float = 0.2
    wasserstein_threshold: float = 0.2  # a fifth of a standard deviation: smaller shifts are noise to most models
    js_threshold: float = 0.1
    alpha: float = 0.05
    correction: str = "bonferroni"  # or "bh"
    overrides: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def thresholds(self, feature: str, kind: str, missing_tested: bool = False) -> dict[str, float]:
        """The effect-size thresholds that apply to one feature of this kind, with ``missing_js`` when its
        missing share was tested on its own."""
        default = {"psi": self.psi_threshold, "wasserstein": self.wasserstein_threshold, "js": self.js_threshold}
        merged = {**default, **self.overrides.get(feature, {})}
        limits = {k: merged[k] for k in (("js",) if kind == "categorical" else ("psi", "wasserstein"))}
        return {**limits, "missing_js": merged["js"]} if missing_tested else limits
