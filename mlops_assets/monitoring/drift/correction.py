"""Multiple-testing correction over every test of one drift report."""

from __future__ import annotations

from typing import Any

import numpy as np


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
