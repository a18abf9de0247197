"""Categorical drift statistics: category counts compared as the log stores them, chi-squared, JS and PSI.

Categories are compared by the text Arrow casts them to, the form the inference log stores (1 is "1",
True "true", 1.5 "1.5"), so a reference of the model's int classes meets the logged strings. Missing values
count as one more category; categories the reference never had share one "unseen" bucket.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlops_assets.monitoring.drift.divergence import js_distance, psi
from mlops_assets.naming import MISSING_CATEGORY

UNSEEN = "<unseen>"


def category_counts(reference: Any, current: Any) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Counts per reference category (sorted by name), then of categories the reference never had, then of
    missing values when either sample has some. Both samples are compared as ``category_text``."""
    import pandas as pd

    ref_codes, ref_names = _category_codes(reference)
    cur_codes, cur_names = _category_codes(current)
    rank = np.argsort(np.argsort(ref_names, kind="stable"))
    unseen, missing = len(ref_names), len(ref_names) + 1
    found = pd.Index(ref_names).get_indexer(cur_names)
    ref_index = np.append(rank, missing)[ref_codes]  # index -1 (missing; not found) picks the appended slot
    cur_index = np.append(np.append(rank, unseen)[found], missing)[cur_codes]
    counts = np.bincount(ref_index, minlength=missing + 1), np.bincount(cur_index, minlength=missing + 1)
    keep = missing + 1 if counts[0][missing] or counts[1][missing] else missing
    return counts[0][:keep], counts[1][:keep], [*sorted(ref_names), UNSEEN, MISSING_CATEGORY][:keep]


def category_text(values: Any) -> Any:
    """The values as an Arrow string array, cast as the inference log casts them (1 is "1", True "true",
    1.5 "1.5"); None and NaN stay missing. An object array mixing types, which Arrow cannot hold as one
    column, is cast one distinct value at a time (values equal in Python, such as 1 and True, are one)."""
    import pyarrow as pa

    try:
        return pa.array(values, from_pandas=True).cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        import pandas as pd

        codes, uniques = pd.factorize(np.asarray(values, dtype=object))
        text = np.array([pa.scalar(u).cast(pa.string()).as_py() for u in uniques] + [None], dtype=object)
        return pa.array(text[codes], pa.string())  # code -1 (missing) picks the appended None


def _category_codes(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Each value's index into the sample's distinct texts (-1 when missing), and those texts."""
    encoded = category_text(values).dictionary_encode()
    return encoded.indices.fill_null(-1).to_numpy(), encoded.dictionary.to_numpy(zero_copy_only=False)


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


def categorical_stats(reference: Any, current: Any) -> dict[str, Any]:
    ref_counts, cur_counts, names = category_counts(reference, current)
    statistic, p_value = chi2_test(ref_counts, cur_counts)
    ref_shares, cur_shares = ref_counts / max(ref_counts.sum(), 1), cur_counts / max(cur_counts.sum(), 1)
    has_missing = names[-1] == MISSING_CATEGORY
    return {
        "kind": "categorical",
        "psi": psi(ref_shares, cur_shares),
        "js": js_distance(ref_shares, cur_shares),
        "test": "chi2",
        "statistic": statistic,
        "p_value": p_value,
        "unseen_share": float(cur_shares[names.index(UNSEEN)]),
        "reference_missing_share": float(ref_shares[-1]) if has_missing else 0.0,
        "missing_share": float(cur_shares[-1]) if has_missing else 0.0,
    }
