"""Drift statistics as pure functions: reference and current values in, effect sizes and tests out.

A feature drifts when an effect size exceeds its threshold (numbers: PSI or W1 over the reference's std;
categories: Jensen-Shannon distance) and its test (KS; chi-squared), corrected over all tested features,
rejects at alpha. The effect size decides: with a large window the test alone flags shifts too small to
matter. The test guards the other side: in a small window the effect size alone is often noise.

The effect sizes live in ``divergence``, the exact numeric statistics in ``numeric_drift``; this module
holds the categorical statistics, the correction, the decision and the report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mlops_assets.divergence import js_distance, psi
from mlops_assets.numeric_drift import numeric_stats

UNSEEN = "<unseen>"
MISSING = "<missing>"


def category_counts(reference: Any, current: Any) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Counts per reference category (sorted by name), then of categories the reference never had, then of
    missing values when either sample has some. Hash factorisation: no Python loop over the values."""
    import pandas as pd

    ref_codes, ref_uniques = pd.factorize(np.asarray(reference, dtype=object))
    cur_codes, cur_uniques = pd.factorize(np.asarray(current, dtype=object))
    names = [str(u) for u in ref_uniques]
    rank = np.argsort(np.argsort(names, kind="stable"))
    unseen, missing = len(names), len(names) + 1
    found = pd.Index(ref_uniques).get_indexer(cur_uniques)
    ref_index = np.append(rank, missing)[ref_codes]  # factorize codes a missing value -1: the appended slot
    cur_index = np.append(np.where(found >= 0, rank[found], unseen), missing)[cur_codes]
    counts = np.bincount(ref_index, minlength=missing + 1), np.bincount(cur_index, minlength=missing + 1)
    keep = missing + 1 if counts[0][missing] or counts[1][missing] else missing
    return counts[0][:keep], counts[1][:keep], [*sorted(names), UNSEEN, MISSING][:keep]


def category_shares(reference: Any, current: Any) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Shares per reference category, plus one bucket for categories the reference never had."""
    ref_counts, cur_counts, names = category_counts(reference, current)
    return ref_counts / max(ref_counts.sum(), 1), cur_counts / max(cur_counts.sum(), 1), names


def chi2_test(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """Chi-squared test of homogeneity between two category-count samples: (statistic, p-value)."""
    from scipy.stats import chi2_contingency

    counts = np.vstack([reference_counts, current_counts])
    counts = counts[:, counts.sum(axis=0) > 0]
    if counts.shape[1] < 2 or counts.sum(axis=1).min() == 0:
        return 0.0, 1.0
    result = chi2_contingency(counts)
    return float(result.statistic), float(result.pvalue)


def adjust_p_values(p_values: Any, method: str) -> np.ndarray:
    """Bonferroni or Benjamini-Hochberg adjusted p-values; a NaN (no test) stays NaN and is not counted."""
    p = np.asarray(p_values, dtype=float)
    tested = np.flatnonzero(~np.isnan(p))
    adjusted = np.full_like(p, np.nan)
    m = len(tested)
    if method == "bonferroni":
        adjusted[tested] = np.minimum(p[tested] * m, 1.0)
    elif method == "bh":
        order = tested[np.argsort(p[tested])]
        scaled = p[order] * m / np.arange(1, m + 1)
        adjusted[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)  # min over larger ranks
    else:
        raise ValueError(f"unknown multiple-testing correction {method!r}: use 'bonferroni' or 'bh'")
    return adjusted


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's verdict and every number behind it; ``thresholds`` are the ones that applied."""

    feature: str
    kind: str  # "numeric", "categorical" or "missing" (absent from the current window: schema drift)
    drifted: bool
    psi: float | None = None
    wasserstein: float | None = None  # W1 between the samples over the reference's standard deviation
    js: float | None = None  # Jensen-Shannon distance, base 2, in [0, 1]
    thresholds: dict[str, float] = field(default_factory=dict)
    test: str | None = None  # "ks" (numeric) or "chi2" (categorical)
    statistic: float | None = None  # KS D or chi-squared
    p_value: float | None = None
    p_adjusted: float | None = None  # after the report's multiple-testing correction
    unseen_share: float | None = None  # share of current values in categories the reference never had
    missing_share: float | None = None  # share of current values missing


@dataclass(frozen=True)
class DriftReport:
    reference_rows: int
    current_rows: int
    correction: str = "bonferroni"
    alpha: float = 0.05
    features: list[FeatureDrift] = field(default_factory=list)

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    @property
    def drifted(self) -> bool:
        return bool(self.drifted_features)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN becomes None and an infinite effect size the string "inf"."""
        return _json_safe({**asdict(self), "drifted": self.drifted, "drifted_features": self.drifted_features})

    def to_markdown(self) -> str:
        verdict = f"**drift in {', '.join(self.drifted_features)}**" if self.drifted else "no drift"
        lines = [
            f"Reference: {self.reference_rows} rows; current window: {self.current_rows} rows; {verdict}.",
            f"Drift: an effect size above its threshold and a test rejecting at {self.alpha:g} after the"
            f" {self.correction} correction.",
            "",
            f"| feature | kind | PSI | W1/std | JS | thresholds | test | statistic | p | p ({self.correction}) |"
            " unseen | missing | drifted |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for f in self.features:
            thresholds = ", ".join(f"{k} {v:g}" for k, v in f.thresholds.items())
            cells = [*map(_fmt, [f.psi, f.wasserstein, f.js]), thresholds, f.test or ""]
            cells += map(_fmt, [f.statistic, f.p_value, f.p_adjusted, f.unseen_share, f.missing_share])
            lines.append(f"| {f.feature} | {f.kind} | {' | '.join(cells)} | {'yes' if f.drifted else 'no'} |")
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.4g}"


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    return value


@dataclass(frozen=True)
class DriftConfig:
    """Thresholds of the drift decision; ``overrides`` maps a feature to its own thresholds
    (keys ``psi``, ``wasserstein``, ``js``)."""

    bins: int = 10
    psi_threshold: float = 0.2
    wasserstein_threshold: float = 0.1
    js_threshold: float = 0.1
    alpha: float = 0.05
    correction: str = "bonferroni"  # or "bh"
    overrides: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def thresholds(self, feature: str, kind: str) -> dict[str, float]:
        """The effect-size thresholds that apply to one feature of this kind."""
        default = {"psi": self.psi_threshold, "wasserstein": self.wasserstein_threshold, "js": self.js_threshold}
        merged = {**default, **self.overrides.get(feature, {})}
        return {k: merged[k] for k in (("js",) if kind == "categorical" else ("psi", "wasserstein"))}


def compute_drift(
    reference: Mapping[str, Any],
    current: Mapping[str, Any],
    dtypes: Mapping[str, str],
    config: DriftConfig,
) -> DriftReport:
    """Per-feature drift of ``current`` against ``reference``; ``dtypes`` gives each feature's spec dtype
    ("str" is categorical, anything else numeric). The rule is the module docstring's; a feature absent
    from ``current`` is schema drift and counts as drifted."""
    present = [c for c in dtypes if c in current]
    stats = numeric_stats(reference, current, [c for c in present if dtypes[c] != "str"], config.bins)
    stats.update({c: _categorical_stats(reference[c], current[c]) for c in present if dtypes[c] == "str"})
    adjusted = adjust_p_values([s["p_value"] for s in stats.values()], config.correction)
    for s, p in zip(stats.values(), adjusted, strict=True):
        s["p_adjusted"] = float(p)
    features = []
    for column in dtypes:
        if column not in current:
            features.append(FeatureDrift(column, "missing", True))
            continue
        s, limits = stats[column], config.thresholds(column, stats[column]["kind"])
        drifted = any(s[name] > limit for name, limit in limits.items()) and s["p_adjusted"] < config.alpha
        features.append(FeatureDrift(column, drifted=bool(drifted), thresholds=limits, **s))
    n_ref, n_cur = (len(next(iter(data.values()), [])) for data in (reference, current))
    return DriftReport(n_ref, n_cur, config.correction, config.alpha, features)


def _categorical_stats(reference: Any, current: Any) -> dict[str, Any]:
    ref_counts, cur_counts, names = category_counts(reference, current)
    statistic, p_value = chi2_test(ref_counts, cur_counts)
    ref_shares, cur_shares = ref_counts / max(ref_counts.sum(), 1), cur_counts / max(cur_counts.sum(), 1)
    return {
        "kind": "categorical",
        "psi": psi(ref_shares, cur_shares),
        "js": js_distance(ref_shares, cur_shares),
        "test": "chi2",
        "statistic": statistic,
        "p_value": p_value,
        "unseen_share": float(cur_shares[names.index(UNSEEN)]),
        "missing_share": float(cur_shares[-1]) if names[-1] == MISSING else 0.0,
    }
