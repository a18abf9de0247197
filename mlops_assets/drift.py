"""Drift statistics as pure functions: reference and current values in, effect sizes and tests out.

Drift is decided on effect size (PSI over bins fixed on the reference), not on a p-value alone: with a
large window a KS test flags shifts too small to matter. The Bonferroni-corrected test only guards the
other side, a small window whose PSI is noise.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ref = rng.normal(size=5000)
>>> round(psi(*binned_shares(ref, rng.normal(size=5000), quantile_edges(ref, 10))), 3) < 0.05
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

EPSILON = 1e-4  # share given to an empty bin, so PSI stays finite; the usual choice in credit scoring
UNSEEN = "<unseen>"


def quantile_edges(reference: np.ndarray, bins: int) -> np.ndarray:
    """Interior bin edges at the reference's quantiles (duplicates merged, so ties make fewer bins)."""
    finite = reference[np.isfinite(reference)]
    if finite.size == 0:
        return np.array([])
    return np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))


def binned_shares(reference: np.ndarray, current: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share of each sample per bin; missing values get a bin of their own (the last)."""

    def shares(values: np.ndarray) -> np.ndarray:
        missing = ~np.isfinite(values)
        counts = np.bincount(np.searchsorted(edges, values[~missing], side="right"), minlength=len(edges) + 1)
        return np.append(counts, missing.sum()) / max(len(values), 1)

    return shares(reference), shares(current)


def category_shares(reference: list[Any], current: list[Any]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Shares per reference category, plus one bucket for categories the reference never had."""
    categories = sorted({str(v) for v in reference})
    index = {c: i for i, c in enumerate(categories)}

    def shares(values: list[Any]) -> np.ndarray:
        codes = np.array([index.get(str(v), len(categories)) for v in values], dtype=int)
        return np.bincount(codes, minlength=len(categories) + 1) / max(len(values), 1)

    return shares(reference), shares(current), [*categories, UNSEEN]


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index: sum over bins of (a - e) * ln(a / e)."""
    e = np.clip(expected, EPSILON, None)
    a = np.clip(actual, EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))


def ks_test(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value over the finite values."""
    from scipy.stats import ks_2samp

    ref, cur = reference[np.isfinite(reference)], current[np.isfinite(current)]
    if ref.size == 0 or cur.size == 0:
        return float("nan"), float("nan")
    result = ks_2samp(ref, cur)
    return float(result.statistic), float(result.pvalue)


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str  # "numeric", "categorical" or "missing"
    psi: float
    threshold: float
    drifted: bool
    ks_statistic: float | None = None
    p_corrected: float | None = None  # KS (numeric) or chi-squared (categorical), Bonferroni
    unseen_share: float | None = None


@dataclass(frozen=True)
class DriftReport:
    reference_rows: int
    current_rows: int
    features: list[FeatureDrift] = field(default_factory=list)

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    @property
    def drifted(self) -> bool:
        return bool(self.drifted_features)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drifted": self.drifted, "drifted_features": self.drifted_features}

    def to_markdown(self) -> str:
        verdict = f"**drift in {', '.join(self.drifted_features)}**" if self.drifted else "no drift"
        lines = [
            f"Reference: {self.reference_rows} rows; current window: {self.current_rows} rows; {verdict}.",
            "",
            "| feature | kind | PSI | threshold | KS D | p (Bonferroni) | unseen | drifted |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for f in self.features:
            cells = [
                _fmt(f.psi),
                _fmt(f.threshold),
                _fmt(f.ks_statistic),
                _fmt(f.p_corrected),
                _fmt(f.unseen_share),
            ]
            lines.append(f"| {f.feature} | {f.kind} | {' | '.join(cells)} | {'yes' if f.drifted else 'no'} |")
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def chi2_test(reference_shares: np.ndarray, current_shares: np.ndarray, n_reference: int, n_current: int) -> float:
    """p-value of the chi-squared test of homogeneity between two category-count samples."""
    from scipy.stats import chi2_contingency

    counts = np.vstack([reference_shares * n_reference, current_shares * n_current]).round()
    counts = counts[:, counts.sum(axis=0) > 0]
    if counts.shape[1] < 2:
        return 1.0
    return float(chi2_contingency(counts).pvalue)


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


def compute_drift(
    reference: Mapping[str, Any],
    current: Mapping[str, Any],
    dtypes: Mapping[str, str],
    config: DriftConfig,
) -> DriftReport:
    """Per-feature drift of ``current`` against ``reference``; ``dtypes`` gives each feature's spec dtype.

    A feature drifts when its PSI exceeds ``psi_threshold`` and its test (KS for numbers, chi-squared for
    categories), Bonferroni-corrected over all features, rejects at ``alpha``: the effect must be large
    and not a small sample's noise (at 100 rows PSI alone flags unshifted columns). A feature absent from
    ``current`` is schema drift and counts as drifted.
    """
    bins, psi_threshold, alpha = config.bins, config.psi_threshold, config.alpha
    n_tests = max(1, sum(c in current for c in dtypes))
    n_ref = len(next(iter(reference.values()), []))
    n_cur = len(next(iter(current.values()), []))
    results = []
    for column, dtype in dtypes.items():
        if column not in current:
            results.append(FeatureDrift(column, "missing", float("inf"), psi_threshold, True))
            continue
        if dtype == "str":
            ref_shares, cur_shares, _ = category_shares(list(reference[column]), list(current[column]))
            value = psi(ref_shares, cur_shares)
            statistic, p_value = None, chi2_test(ref_shares, cur_shares, n_ref, n_cur)
            extra = {"unseen_share": float(cur_shares[-1])}
        else:
            ref = np.asarray(reference[column], dtype=float)
            cur = np.asarray(current[column], dtype=float)
            value = psi(*binned_shares(ref, cur, quantile_edges(ref, bins)))
            statistic, p_value = ks_test(ref, cur)
            extra = {}
        corrected = min(1.0, p_value * n_tests)
        results.append(
            FeatureDrift(
                column,
                "categorical" if dtype == "str" else "numeric",
                value,
                psi_threshold,
                bool(value > psi_threshold and corrected < alpha),
                statistic,
                corrected,
                **extra,
            )
        )
    return DriftReport(n_ref, n_cur, results)
