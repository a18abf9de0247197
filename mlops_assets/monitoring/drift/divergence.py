"""Effect sizes between two distributions given as shares per bin or category: PSI and Jensen-Shannon distance.

The numeric bins are fixed on the reference (``numeric``), the categories are the reference's (``categorical``).

>>> import numpy as np
>>> round(psi(np.array([0.5, 0.5]), np.array([0.4, 0.6])), 4)
0.0405
>>> js_distance(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
1.0
"""

from __future__ import annotations

import math

import numpy as np

EPSILON = 1e-4  # share given to an empty bin, so PSI stays finite; the usual choice in credit scoring


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
