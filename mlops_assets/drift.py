"""Drift statistics as pure functions: reference and current values in, effect sizes and tests out.

Drift is decided on effect size (PSI and Wasserstein distance for numbers, Jensen-Shannon distance for
categories), not on a p-value alone: with a large window a KS test flags shifts too small to matter. The
corrected test only guards the other side, a small window whose effect size is noise.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ref = rng.normal(size=5000)
>>> round(psi(*binned_shares(ref, rng.normal(size=5000), quantile_edges(ref, 10))), 3) < 0.05
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

EPSILON = 1e-4  # share given to an empty bin, so PSI stays finite; the usual choice in credit scoring
UNSEEN = "<unseen>"
MISSING = "<missing>"
EXACT_KS_MAX_ROWS = 10_000  # scipy's ks_2samp 'auto' switches from the exact to the asymptotic p-value above this
BLOCK_VALUES = 1 << 22  # values per sample in one block of columns: bounds the memory the statistics add
VALUES_PER_BUCKET = 4  # numeric_drift's bucket count is the pooled rows over this, as a power of two


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
    """Jensen-Shannon distance in base 2: 0 for equal shares, 1 for disjoint ones."""
    from scipy.special import rel_entr

    m = (p + q) / 2
    divergence = (rel_entr(p, m).sum() + rel_entr(q, m).sum()) / (2 * math.log(2))
    return math.sqrt(max(float(divergence), 0.0))


def category_counts(reference: Any, current: Any) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Counts per reference category (sorted by name), then categories the reference never had, then
    missing values when either sample has some. Hash factorisation: no Python loop over the values."""
    import pandas as pd

    ref_codes, ref_uniques = pd.factorize(np.asarray(reference, dtype=object))
    cur_codes, cur_uniques = pd.factorize(np.asarray(current, dtype=object))
    names = [str(u) for u in ref_uniques]
    rank = np.empty(len(names), dtype=np.intp)
    rank[np.argsort(names, kind="stable")] = np.arange(len(names))
    unseen, missing = len(names), len(names) + 1
    found = pd.Index(ref_uniques).get_indexer(cur_uniques)
    ref_index = np.append(rank, missing)[ref_codes]  # factorize codes a missing value -1: the appended slot
    cur_index = np.append(np.where(found >= 0, rank[found], unseen), missing)[cur_codes]
    ref_counts = np.bincount(ref_index, minlength=missing + 1)
    cur_counts = np.bincount(cur_index, minlength=missing + 1)
    labels = [*sorted(names), UNSEEN, MISSING]
    if ref_counts[missing] == cur_counts[missing] == 0:
        return ref_counts[:-1], cur_counts[:-1], labels[:-1]
    return ref_counts, cur_counts, labels


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


def adjust_p_values(p_values: np.ndarray, method: str) -> np.ndarray:
    """Bonferroni or Benjamini-Hochberg adjusted p-values; NaN (no test) is kept and not counted."""
    p = np.asarray(p_values, dtype=float)
    tested = ~np.isnan(p)
    m = int(tested.sum())
    adjusted = np.full_like(p, np.nan)
    if m == 0:
        return adjusted
    if method == "bonferroni":
        adjusted[tested] = np.minimum(p[tested] * m, 1.0)
    elif method == "bh":
        order = np.argsort(p[tested])
        scaled = p[tested][order] * m / np.arange(1, m + 1)
        step_up = np.minimum.accumulate(scaled[::-1])[::-1]  # p_(i) adjusted = min over j >= i of m p_(j) / j
        values = np.empty(m)
        values[order] = np.minimum(step_up, 1.0)
        adjusted[tested] = values
    else:
        raise ValueError(f"unknown multiple-testing correction {method!r}: use 'bonferroni' or 'bh'")
    return adjusted


def ks_p_values(statistic: np.ndarray, n_reference: np.ndarray, n_current: np.ndarray) -> np.ndarray:
    """Two-sided KS p-values as ``scipy.stats.ks_2samp`` computes them above ``EXACT_KS_MAX_ROWS`` rows:
    ``kstwo`` at the effective sample size n = n1 n2 / (n1 + n2), to the last bit. Except where kstwo
    sums an exact series of n terms (n > 140 and 2.2 <= n D^2 < 370, p between about 1e-160 and 0.025),
    half a second per column at a million rows: there the limiting Kolmogorov distribution (``kstwobign``
    at sqrt(n) D), within 2.5% of scipy's p-value for n >= 5,000 and p >= 1e-9, 0.2% at n = 500,000."""
    from scipy.stats import kstwo, kstwobign

    m = np.maximum(n_reference, n_current).astype(float)
    n = np.minimum(n_reference, n_current).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        effective = np.round(m * n / (m + n))
        series = (effective > 140) & (effective * statistic**2 >= 2.2) & (effective * statistic**2 < 370)
        p = np.full(np.shape(statistic), np.nan)
        p[series] = kstwobign.sf(np.sqrt(effective[series]) * statistic[series])
        rest = ~series & ~np.isnan(statistic)
        p[rest] = kstwo.sf(statistic[rest], effective[rest])
    return np.clip(p, 0, 1)


@dataclass(frozen=True)
class _Histogram:
    """One sample of a block of columns in fine equal-width buckets over the pooled range of each column."""

    ids: np.ndarray  # (columns, rows) bucket of each value, offset by column; a column's last bucket is missing
    counts: np.ndarray  # (columns, buckets) values per bucket
    sums: np.ndarray  # (columns, buckets) sum of (value - column minimum) per bucket
    finite: np.ndarray  # (columns,) finite values

    @classmethod
    def of(cls, values: np.ndarray, low: np.ndarray, scale: np.ndarray, buckets: int) -> _Histogram:
        offset = values - low[:, None]
        position = offset * scale[:, None]  # monotone in the value, so a bucket never splits equal values
        ids = np.fmin(position, buckets, out=position).astype(np.int64)  # fmin sends NaN to the missing bucket
        ids += (np.arange(len(values)) * (buckets + 1))[:, None]
        size = len(values) * (buckets + 1)
        counts = np.bincount(ids.ravel(), minlength=size).reshape(-1, buckets + 1)[:, :-1]
        sums = np.bincount(ids.ravel(), weights=offset.ravel(), minlength=size).reshape(-1, buckets + 1)[:, :-1]
        return cls(ids, counts, sums, counts.sum(axis=1))


def numeric_drift(reference: np.ndarray, current: np.ndarray, bins: int) -> dict[str, np.ndarray]:
    """PSI, KS test and normalised Wasserstein distance for every row of two (columns, rows) float blocks.

    Sorting a million floats costs about 50 ms on this project's machines, so sorting both samples of every
    column would take seconds. Instead each value goes into one of many equal-width buckets over the
    column's pooled range; cumulative bucket counts give both empirical CDFs exactly at every bucket end,
    which bounds what can happen inside a bucket. Only buckets whose inside can matter are sorted: where
    the KS supremum may lie, where F_ref - F_cur changes sign (W1 integrates its absolute value), and where
    a reference quantile falls (PSI's edges). The results are exact: the KS statistic equals
    ``scipy.stats.ks_2samp``'s, the edges ``np.quantile``'s, and W1 ``scipy.stats.wasserstein_distance``'s
    to rounding. NaN marks a missing value: PSI gives missing values a bin, the other statistics skip them.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.fmin(np.fmin.reduce(reference, 1, initial=np.nan), np.fmin.reduce(current, 1, initial=np.nan))
        high = np.fmax(np.fmax.reduce(reference, 1, initial=np.nan), np.fmax.reduce(current, 1, initial=np.nan))
        buckets = 1 << max(4, (reference.shape[1] + current.shape[1]) // VALUES_PER_BUCKET).bit_length() - 1
        scale = np.where(high > low, (buckets - 1) / (high - low), 0.0)  # the last bucket holds the maximum
        width = np.where(scale > 0, 1 / scale, 0.0)
    ref, cur = _Histogram.of(reference, low, scale, buckets), _Histogram.of(current, low, scale, buckets)
    bounds = _Bounds.of(ref, cur, width)
    ranks, gamma, rank_buckets = _quantile_ranks(ref, bins)
    flags = np.pad(bounds.refine | _spans(rank_buckets, buckets), ((0, 0), (0, 1))).ravel()  # the missing bucket: never
    ref_pick, cur_pick = flags[ref.ids], flags[cur.ids]
    empty = (ref.finite == 0) | (cur.finite == 0)
    rows = []
    for j in range(len(reference)):
        column = _Column(
            (reference[j][ref_pick[j]], current[j][cur_pick[j]]),
            (ref.ids[j][ref_pick[j]] - j * (buckets + 1), cur.ids[j][cur_pick[j]] - j * (buckets + 1)),
            (bounds.before_ref[j], bounds.before_cur[j]),
            (int(ref.finite[j]), int(cur.finite[j])),
            low[j], scale[j], width[j],
        )  # fmt: skip
        edges = column.quantile_edges(ranks[:, j], gamma[j])
        ref_shares, cur_shares = column.shares(edges, 0, reference.shape[1]), column.shares(edges, 1, current.shape[1])
        if empty[j]:
            rows.append((psi(ref_shares, cur_shares), np.nan, np.nan))
            continue
        w1 = bounds.closed_area[j] + column.crossing_area(bounds.crossing[j])
        rows.append((psi(ref_shares, cur_shares), column.ks_statistic(bounds.top[j], bounds.bottom[j]), w1))
    psi_values, ks, w1 = (np.array(r, dtype=float) for r in zip(*rows, strict=True))
    std = _std(reference, bool((ref.finite == reference.shape[1]).all()))
    ks, p_values = _ks_test(ks, reference, current, ref.finite, cur.finite)
    with np.errstate(invalid="ignore", divide="ignore"):
        wasserstein = np.where(std > 0, w1 / std, np.where(w1 > 0, np.inf, 0.0))
    return {
        "psi": psi_values,
        "wasserstein": np.where(empty, np.nan, wasserstein),
        "ks": ks,
        "p_value": p_values,
        "missing_share": 1 - cur.finite / max(current.shape[1], 1),
    }


def _std(values: np.ndarray, complete: bool) -> np.ndarray:
    """Per-row standard deviation of the non-NaN values (numpy's ddof=0, the Wasserstein normaliser)."""
    if complete:
        return values.std(axis=1)
    present = ~np.isnan(values)
    n = present.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(present, values, 0.0).sum(axis=1) / n
        deviation = np.where(present, values - mean[:, None], 0.0)
        return np.sqrt(np.einsum("ij,ij->i", deviation, deviation) / n)


def _ks_test(statistic, reference, current, n_reference, n_current) -> tuple[np.ndarray, np.ndarray]:
    """scipy's ks_2samp statistic and p-value: up to ``EXACT_KS_MAX_ROWS`` rows it snaps the statistic onto
    the 1/lcm(n1, n2) lattice and computes the exact null distribution (done here by scipy on the column,
    cheap at that size); above, its asymptotic p-value, vectorised."""
    from scipy.stats import ks_2samp

    statistic, p = statistic.copy(), ks_p_values(statistic, n_reference, n_current)
    small = (np.maximum(n_reference, n_current) <= EXACT_KS_MAX_ROWS) & ~np.isnan(statistic)
    for j in np.flatnonzero(small):
        lcm = int(n_reference[j]) // math.gcd(int(n_reference[j]), int(n_current[j])) * int(n_current[j])
        statistic[j] = round(statistic[j] * lcm) / lcm
        p[j] = ks_2samp(reference[j][~np.isnan(reference[j])], current[j][~np.isnan(current[j])]).pvalue
    return statistic, p


@dataclass(frozen=True)
class _Bounds:
    """What bucket ends alone say about D(x) = F_ref(x) - F_cur(x), per column."""

    before_ref: np.ndarray  # (columns, buckets) reference values in earlier buckets
    before_cur: np.ndarray  # (columns, buckets) current values in earlier buckets
    top: np.ndarray  # (columns,) largest D at a bucket's last value: the KS maximum is at least this
    bottom: np.ndarray  # (columns,) smallest D at a bucket's last value
    crossing: np.ndarray  # (columns, buckets) D may change sign inside the bucket
    refine: np.ndarray  # (columns, buckets) buckets whose inside can change the KS statistic or W1
    closed_area: np.ndarray  # (columns,) W1's integral over the buckets where D keeps its sign

    @classmethod
    def of(cls, ref: _Histogram, cur: _Histogram, width: np.ndarray) -> _Bounds:
        n_ref, n_cur = ref.finite[:, None], cur.finite[:, None]
        after_ref, after_cur = np.cumsum(ref.counts, axis=1), np.cumsum(cur.counts, axis=1)
        before_ref, before_cur = after_ref - ref.counts, after_cur - cur.counts
        with np.errstate(invalid="ignore", divide="ignore"):
            end = after_ref / n_ref - after_cur / n_cur
            upper = after_ref / n_ref - before_cur / n_cur  # D inside a bucket lies in [lower, upper]
            lower = before_ref / n_ref - after_cur / n_cur
            right = np.arange(1, ref.counts.shape[1] + 1) * width[:, None]
            area_ref = (before_ref * width[:, None] + ref.counts * right - ref.sums) / n_ref  # integral of F_ref
            area_cur = (before_cur * width[:, None] + cur.counts * right - cur.sums) / n_cur
        top, bottom = end.max(axis=1), end.min(axis=1)  # an empty bucket repeats an earlier value, or 0 = D(max)
        crossing = (lower < 0) & (upper > 0)
        extreme = (upper > top[:, None]) | (lower < bottom[:, None])
        closed = np.where(crossing, 0.0, np.abs(area_ref - area_cur)).sum(axis=1)
        return cls(before_ref, before_cur, top, bottom, crossing, crossing | extreme, closed)


def _quantile_ranks(ref: _Histogram, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order statistics (as ranks) and weights of np.quantile's 'linear' method at the interior bin
    quantiles, and the buckets holding those ranks: shapes (2, columns, bins - 1), (columns, bins - 1), same."""
    n = ref.finite[:, None]
    virtual = (n - 1) * np.linspace(0, 1, bins + 1)[1:-1]
    floor = np.floor(virtual)
    at_end = virtual >= n - 1
    ranks = np.stack([np.where(at_end, n - 1, floor), np.where(at_end, n - 1, floor + 1)]).clip(0).astype(np.int64)
    columns, buckets = ref.counts.shape
    stride = (np.arange(columns) * (n.max(initial=0) + 1))[:, None]
    cumulative = (np.cumsum(ref.counts, axis=1) + stride).ravel()
    found = np.searchsorted(cumulative, ranks + stride, side="right") - (np.arange(columns) * buckets)[:, None]
    return ranks, virtual - floor, np.minimum(found, buckets - 1)


def _spans(rank_buckets: np.ndarray, buckets: int) -> np.ndarray:
    """(columns, buckets) mask of every bucket from the lower to the upper rank's, edges lying in between."""
    columns = rank_buckets.shape[1]
    marks = np.zeros((columns, buckets + 1), dtype=np.int64)
    rows = np.broadcast_to(np.arange(columns)[:, None], rank_buckets[0].shape)
    np.add.at(marks, (rows, rank_buckets[0]), 1)
    np.add.at(marks, (rows, rank_buckets[1] + 1), -1)
    return np.cumsum(marks, axis=1)[:, :-1] > 0


class _Column:
    """One column's values in its refined buckets, sorted, with each sample's cumulative count at each."""

    def __init__(self, values, buckets, before, n, low, scale, width):
        order = np.argsort(np.concatenate(values), kind="stable")
        self.values, self.buckets = np.concatenate(values)[order], np.concatenate(buckets)[order]
        is_ref = order < len(values[0])
        run_ref = np.cumsum(is_ref)
        run_cur = np.arange(1, len(order) + 1) - run_ref
        self.starts = np.r_[True, self.buckets[1:] != self.buckets[:-1]] if len(order) else np.array([], bool)
        first = np.maximum.accumulate(np.where(self.starts, np.arange(len(order)), 0))
        self.before, self.n = before, n
        self.counts = (
            self.before[0][self.buckets] + run_ref - (run_ref - is_ref)[first],
            self.before[1][self.buckets] + run_cur - (run_cur - ~is_ref)[first],
        )
        self.low, self.scale, self.width = low, scale, width

    def ks_statistic(self, top: float, bottom: float) -> float:
        """scipy's two-sided statistic: D's extremes over all values, the larger side winning ties to max."""
        last = np.r_[self.values[1:] != self.values[:-1], True] if len(self.values) else np.array([], bool)
        d = self.counts[0][last] / self.n[0] - self.counts[1][last] / self.n[1]
        high, low = max(top, d.max(initial=-np.inf)), min(bottom, d.min(initial=np.inf))
        low = min(max(-low, 0.0), 1.0)
        return float(low if low > high else high)

    def crossing_area(self, crossing: np.ndarray) -> float:
        """W1's integral of |D| over the buckets where D changes sign, piece by piece between values."""
        if not len(self.values):
            return 0.0
        offset = self.values - self.low
        ends = np.r_[self.starts[1:], True]
        following = np.where(ends, (self.buckets + 1) * self.width, np.r_[offset[1:], 0.0])
        gap = np.abs(self.counts[0] / self.n[0] - self.counts[1] / self.n[1]) * (following - offset)
        before = np.abs(self.before[0][self.buckets] / self.n[0] - self.before[1][self.buckets] / self.n[1])
        lead = np.where(self.starts, before * (offset - self.buckets * self.width), 0.0)
        return float(np.sum((gap + lead)[crossing[self.buckets]]))

    def quantile_edges(self, ranks: np.ndarray, gamma: np.ndarray) -> np.ndarray:
        """``quantile_edges`` of the reference, from the refined buckets that hold the ranks."""
        if self.n[0] == 0:
            return np.array([])
        a, b = self.values[np.searchsorted(self.counts[0], ranks + 1, side="left")]
        diff = b - a
        return np.unique(np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma))  # np.quantile's lerp

    def shares(self, edges: np.ndarray, sample: int, rows: int) -> np.ndarray:
        """``binned_shares`` of one sample (0: reference, 1: current) over these edges."""
        below = np.array([], dtype=np.int64)
        if len(edges):
            position = np.searchsorted(self.values, edges, side="left")
            edge_buckets = np.minimum(((edges - self.low) * self.scale).astype(np.int64), len(self.before[0]) - 1)
            inside = (position > 0) & (self.buckets[position - 1] == edge_buckets)
            below = np.where(inside, self.counts[sample][position - 1], self.before[sample][edge_buckets])
        counts = np.diff(np.concatenate([[0], below, [self.n[sample]]]))
        return np.append(counts, rows - self.n[sample]) / max(rows, 1)


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's verdict with every number behind it; thresholds are those that applied to it."""

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
        """JSON-ready: NaN becomes None and an infinite effect the string "inf"."""
        return _json_safe({**asdict(self), "drifted": self.drifted, "drifted_features": self.drifted_features})

    def to_markdown(self) -> str:
        verdict = f"**drift in {', '.join(self.drifted_features)}**" if self.drifted else "no drift"
        lines = [
            f"Reference: {self.reference_rows} rows; current window: {self.current_rows} rows; {verdict}.",
            f"A feature drifts when an effect size exceeds its threshold and its test, {self.correction}-corrected"
            f" over all tested features, rejects at {self.alpha:g}.",
            "",
            f"| feature | kind | PSI | W1/std | JS | thresholds | test | statistic | p | p ({self.correction})"
            " | unseen | missing | drifted |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for f in self.features:
            numbers = [f.psi, f.wasserstein, f.js]
            thresholds = ", ".join(f"{k} {v:g}" for k, v in f.thresholds.items())
            tests = [f.statistic, f.p_value, f.p_adjusted, f.unseen_share, f.missing_share]
            cells = [*map(_fmt, numbers), thresholds, f.test or "", *map(_fmt, tests)]
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
        base = {"psi": self.psi_threshold, "wasserstein": self.wasserstein_threshold, "js": self.js_threshold}
        merged = {**base, **self.overrides.get(feature, {})}
        return {k: merged[k] for k in (("js",) if kind == "categorical" else ("psi", "wasserstein"))}


def compute_drift(
    reference: Mapping[str, Any],
    current: Mapping[str, Any],
    dtypes: Mapping[str, str],
    config: DriftConfig,
) -> DriftReport:
    """Per-feature drift of ``current`` against ``reference``; ``dtypes`` gives each feature's spec dtype
    ("str" is categorical, anything else numeric).

    A feature drifts when an effect size exceeds its threshold (numeric: PSI or W1/std; categorical: JS)
    and its test (KS for numbers, chi-squared for categories), corrected over all tested features, rejects
    at ``alpha``: the effect must be large and not a small sample's noise (at 100 rows PSI alone flags
    unshifted columns). A feature absent from ``current`` is schema drift and counts as drifted.
    """
    n_ref = len(next(iter(reference.values()), []))
    n_cur = len(next(iter(current.values()), []))
    present = [c for c in dtypes if c in current]
    stats = _numeric_stats(reference, current, [c for c in present if dtypes[c] != "str"], config.bins)
    stats.update({c: _categorical_stats(reference[c], current[c]) for c in present if dtypes[c] == "str"})
    adjusted = dict(zip(stats, adjust_p_values([s["p_value"] for s in stats.values()], config.correction), strict=True))
    features = []
    for column in dtypes:
        if column not in current:
            features.append(FeatureDrift(column, "missing", True))
            continue
        s = {**stats[column], "p_adjusted": float(adjusted[column])}
        limits = config.thresholds(column, s["kind"])
        large = any(s[name] > limit for name, limit in limits.items())
        features.append(
            FeatureDrift(column, drifted=bool(large and s["p_adjusted"] < config.alpha), thresholds=limits, **s)
        )
    return DriftReport(n_ref, n_cur, config.correction, config.alpha, features)


def _numeric_stats(reference, current, columns: list[str], bins: int) -> dict[str, dict[str, Any]]:
    """``numeric_drift`` over blocks of columns small enough to bound the memory it adds."""
    rows = max((len(reference[c]) for c in columns[:1]), default=1) + max(
        (len(current[c]) for c in columns[:1]), default=1
    )
    per_block = max(1, 2 * BLOCK_VALUES // max(rows, 1))
    stats = {}
    for start in range(0, len(columns), per_block):
        block = columns[start : start + per_block]
        result = numeric_drift(_stack(reference, block), _stack(current, block), bins)
        for j, column in enumerate(block):
            stats[column] = {
                "kind": "numeric",
                "psi": float(result["psi"][j]),
                "wasserstein": float(result["wasserstein"][j]),
                "test": "ks",
                "statistic": float(result["ks"][j]),
                "p_value": float(result["p_value"][j]),
                "missing_share": float(result["missing_share"][j]),
            }
    return stats


def _stack(data: Mapping[str, Any], columns: list[str]) -> np.ndarray:
    """(columns, rows) float64 copy with every non-finite or missing value as NaN."""
    block = np.empty((len(columns), len(data[columns[0]]) if columns else 0))
    for j, column in enumerate(columns):
        values = np.asarray(data[column])
        if values.dtype == object:
            import pandas as pd

            values = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        block[j] = values
    infinite = np.isinf(block)
    if infinite.any():
        block[infinite] = np.nan
    return block


def _categorical_stats(reference: Any, current: Any) -> dict[str, Any]:
    ref_counts, cur_counts, names = category_counts(reference, current)
    statistic, p = chi2_test(ref_counts, cur_counts)
    ref_shares, cur_shares = ref_counts / max(ref_counts.sum(), 1), cur_counts / max(cur_counts.sum(), 1)
    return {
        "kind": "categorical",
        "psi": psi(ref_shares, cur_shares),
        "js": js_distance(ref_shares, cur_shares),
        "test": "chi2",
        "statistic": statistic,
        "p_value": p,
        "unseen_share": float(cur_shares[names.index(UNSEEN)]),
        "missing_share": float(cur_shares[-1]) if names[-1] == MISSING else 0.0,
    }
