"""Binning by the definition, one column at a time: what ``numeric.numeric_drift``'s bucketed PSI must reproduce.

``quantile_edges`` and ``binned_shares`` are the plain reading of PSI on bins fixed on the reference; the product
computes the same edges and shares without sorting whole columns, and the tests compare the two.
"""

from __future__ import annotations

import numpy as np


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
