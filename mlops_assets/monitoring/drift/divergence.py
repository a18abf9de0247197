"""Effect sizes between two distributions: PSI on bins fixed on the reference, Jensen-Shannon distance.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ref = rng.normal(size=5000)
>>> round(psi(*binned_shares(ref, rng.normal(size=5000), quantile_edges(ref, 10))), 3) < 0.05
True
"""

from __future__ import annotations

import math

import numpy as np

EPSILON = 1e-4  # share given to an empty bin, so PSI stays finite; the usual choice in credit scoring


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


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index: sum over bins of (a - e) * ln(a / e)."""
    e = np.clip(expected, EPSILON, None)
    a = np.clip(actual, EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance in base 2 between two share vectors: 0 when equal, 1 when disjoint."""
    from scipy.special import rel_entr

    m = (p + q) / 2
    return math.sqrt(max(float(rel_entr(p, m).sum() + rel_entr(q, m).sum()) / (2 * math.log(2)), 0.0))
