"""Numeric drift statistics computed exactly without sorting whole columns: PSI, W1 and the KS test.

``numeric_stats`` runs ``numeric_drift`` over blocks of columns on a few threads; see ``numeric_drift``
for how bucketing keeps the results equal to scipy's while sorting only the buckets that matter.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops_assets.monitoring.drift.divergence import psi

EXACT_KS_MAX_ROWS = 10_000  # scipy's ks_2samp 'auto' computes the exact p-value up to this many rows
BLOCK_VALUES = 1 << 18  # values per sample in one block of numeric columns: bounds the memory added
VALUES_PER_BUCKET = 8  # numeric_drift uses about (reference + current rows) / this buckets per column
THREADS = min(4, os.cpu_count() or 1)  # blocks of numeric columns computed at once


def ks_p_values(statistic: np.ndarray, n_reference: np.ndarray, n_current: np.ndarray) -> np.ndarray:
    """Two-sided KS p-values as ``scipy.stats.ks_2samp`` computes them above ``EXACT_KS_MAX_ROWS`` rows:
    ``kstwo`` at the effective size n = n1 n2 / (n1 + n2), to the last bit. Except where kstwo sums an
    exact series of n terms (n > 140 and 2.2 <= n D^2 < 370, p from about 1e-160 to 0.025), slow for large n:
    there the limiting Kolmogorov distribution (``kstwobign`` at sqrt(n) D), within 2.5% of scipy's p-value for
    n >= 5,000 and p >= 1e-9, and 0.2% at n = 500,000."""
    from scipy.stats import kstwo, kstwobign

    m, n = np.maximum(n_reference, n_current).astype(float), np.minimum(n_reference, n_current).astype(float)
    p = np.full(np.shape(statistic), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        effective = np.round(m * n / (m + n))
        series = (effective > 140) & (effective * statistic**2 >= 2.2) & (effective * statistic**2 < 370)
        exact = ~series & ~np.isnan(statistic)
        p[series] = kstwobign.sf(np.sqrt(effective[series]) * statistic[series])
        p[exact] = kstwo.sf(statistic[exact], effective[exact])
    return np.clip(p, 0, 1)


def numeric_drift(reference: np.ndarray, current: np.ndarray, bins: int) -> dict[str, np.ndarray]:
    """PSI, KS statistic and p-value, W1 over the reference's std and each sample's missing share, for every
    row of two (columns, rows) float blocks in which NaN marks a missing value (PSI gives missing values a
    bin; the other statistics skip them).

    Sorting both samples of every column, as scipy does column by column, is the slow part on large windows
    (bench/RESULTS.md, "Drift statistics"). Instead each value goes into one of many equal-width buckets over its
    column's pooled range. Cumulative bucket counts give both empirical CDFs exactly at every bucket end,
    which bounds D = F_ref - F_cur inside each bucket, so only the buckets whose inside can matter are
    sorted: where the KS supremum may lie, where D changes sign (W1 integrates |D|), and where a reference
    quantile falls (PSI's edges). The results are exact, not estimates: the KS statistic and p-value are
    ``scipy.stats.ks_2samp``'s (see ``ks_p_values``), the edges ``np.quantile``'s, and W1
    ``scipy.stats.wasserstein_distance``'s to rounding.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.fmin(np.fmin.reduce(reference, 1, initial=np.nan), np.fmin.reduce(current, 1, initial=np.nan))
        high = np.fmax(np.fmax.reduce(reference, 1, initial=np.nan), np.fmax.reduce(current, 1, initial=np.nan))
        buckets = 1 << max(4, (reference.shape[1] + current.shape[1]) // VALUES_PER_BUCKET).bit_length() - 1
        scale = np.where(high > low, (buckets - 1) / (high - low), 0.0)  # the last bucket holds the maximum
        width = np.where(scale > 0, 1 / scale, 0.0)
    ref, cur = _Histogram.of(reference, low, scale, buckets), _Histogram.of(current, low, scale, buckets)
    bounds = _Bounds.of(ref, cur, width)
    ranks, gamma, spans = _quantile_ranks(ref, bins)
    flags = np.pad(bounds.refine | spans, ((0, 0), (0, 1))).ravel()  # never the missing bucket
    ref_pick, cur_pick = flags[ref.ids], flags[cur.ids]
    empty = (ref.finite == 0) | (cur.finite == 0)
    rows = []
    for j in range(len(reference)):
        r, c = ref_pick[j], cur_pick[j]
        column = _Column(
            np.concatenate([reference[j][r], current[j][c]]),
            np.concatenate([ref.ids[j][r], cur.ids[j][c]]) - j * (buckets + 1),
            np.arange(r.sum() + c.sum()) < r.sum(),
            (ref.counts[j], cur.counts[j]),
            (bounds.before[0][j], bounds.before[1][j]),
            (low[j], scale[j], width[j]),
        )
        edges = column.quantile_edges(ranks[:, j], gamma[j])
        shares = column.shares(edges, 0, reference.shape[1]), column.shares(edges, 1, current.shape[1])
        if empty[j]:
            rows.append((psi(*shares), np.nan, np.nan))
        else:
            w1 = bounds.area[j] + column.split_area(bounds.split[j])
            rows.append((psi(*shares), column.ks_statistic(bounds.top[j], bounds.bottom[j]), w1))
    psi_values, ks, w1 = (np.array(r, dtype=float) for r in zip(*rows, strict=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        std = reference.std(axis=1) if (ref.finite == reference.shape[1]).all() else _nan_std(reference)
        wasserstein = np.where(std > 0, w1 / std, np.where(w1 > 0, np.inf, w1))
    statistic, p_value = _ks_test(ks, reference, current, ref.finite, cur.finite)
    reference_missing_share = 1 - ref.finite / max(reference.shape[1], 1)
    missing_share = 1 - cur.finite / max(current.shape[1], 1)
    return {"psi": psi_values, "wasserstein": wasserstein, "statistic": statistic, "p_value": p_value,
            "reference_missing_share": reference_missing_share, "missing_share": missing_share}  # fmt: skip


@dataclass(frozen=True)
class _Histogram:
    """One sample of a block of columns in equal-width buckets over each column's pooled range."""

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
        flat, size = ids.ravel(), len(values) * (buckets + 1)
        counts = np.bincount(flat, minlength=size).reshape(-1, buckets + 1)[:, :-1]
        sums = np.bincount(flat, weights=offset.ravel(), minlength=size).reshape(-1, buckets + 1)[:, :-1]
        return cls(ids, counts, sums, counts.sum(axis=1))


@dataclass(frozen=True)
class _Bounds:
    """What the buckets alone say about D(x) = F_ref(x) - F_cur(x), per column, and where they cannot."""

    before: tuple[np.ndarray, np.ndarray]  # (columns, buckets) reference and current values in earlier buckets
    top: np.ndarray  # (columns,) largest D at a bucket's last value: the KS maximum is at least this
    bottom: np.ndarray  # (columns,) smallest D at a bucket's last value
    split: np.ndarray  # (columns, buckets) D may change sign inside the bucket
    refine: np.ndarray  # (columns, buckets) buckets to sort for the KS statistic or W1
    area: np.ndarray  # (columns,) the integral of |D| (W1) over the buckets that are not split

    @classmethod
    def of(cls, ref: _Histogram, cur: _Histogram, width: np.ndarray) -> _Bounds:
        n_ref, n_cur, width = ref.finite[:, None], cur.finite[:, None], width[:, None]
        after_ref, after_cur = np.cumsum(ref.counts, axis=1), np.cumsum(cur.counts, axis=1)
        before_ref, before_cur = after_ref - ref.counts, after_cur - cur.counts
        with np.errstate(invalid="ignore", divide="ignore"):
            end = after_ref / n_ref - after_cur / n_cur
            upper = after_ref / n_ref - before_cur / n_cur  # D inside a bucket lies in [lower, upper]
            lower = before_ref / n_ref - after_cur / n_cur
            top, bottom = end.max(axis=1), end.min(axis=1)  # an empty bucket repeats an earlier D, or 0 = D(max)
            right = np.arange(1, ref.counts.shape[1] + 1) * width  # bucket ends, as offsets from the minimum
            area_ref = (before_ref * width + ref.counts * right - ref.sums) / n_ref  # integral of F_ref
            area_cur = (before_cur * width + cur.counts * right - cur.sums) / n_cur
        crossing = (lower < 0) & (upper > 0)
        extreme = (upper > top[:, None]) | (lower < bottom[:, None])
        area = np.where(crossing, 0.0, np.abs(area_ref - area_cur)).sum(axis=1)
        return cls((before_ref, before_cur), top, bottom, crossing, crossing | extreme, area)


def _quantile_ranks(ref: _Histogram, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ranks np.quantile's 'linear' method interpolates between at the interior bin quantiles, its
    weights, and the (columns, buckets) mask of buckets from the lower rank's to the upper rank's."""
    n = ref.finite[:, None]
    virtual = (n - 1) * np.linspace(0, 1, bins + 1)[1:-1]
    floor = np.floor(virtual)
    at_end = virtual >= n - 1
    ranks = np.stack([np.where(at_end, n - 1, floor), np.where(at_end, n - 1, floor + 1)]).clip(0).astype(np.int64)
    columns, buckets = ref.counts.shape
    stride = (np.arange(columns) * (n.max(initial=0) + 1))[:, None]  # makes all columns' cumulative counts one
    cumulative = (np.cumsum(ref.counts, axis=1) + stride).ravel()  # increasing array for searchsorted
    found = np.searchsorted(cumulative, ranks + stride, side="right") - (np.arange(columns) * buckets)[:, None]
    marks = np.zeros((columns, buckets + 1), dtype=np.int64)
    rows = np.broadcast_to(np.arange(columns)[:, None], ranks[0].shape)
    np.add.at(marks, (rows, np.minimum(found[0], buckets - 1)), 1)
    np.add.at(marks, (rows, np.minimum(found[1], buckets - 1) + 1), -1)
    return ranks, virtual - floor, np.cumsum(marks, axis=1)[:, :-1] > 0


class _Column:
    """One column's values in the buckets to sort, sorted, with each sample's cumulative count at each.
    A bucket holding one distinct value (ties, a discrete column) becomes one point weighted by each
    sample's count in it: its counts already say all there is."""

    def __init__(self, values, buckets, is_ref, counts, before, geometry: tuple[float, float, float]):
        lowest, highest = np.full(len(before[0]), np.inf), np.full(len(before[0]), -np.inf)
        np.minimum.at(lowest, buckets, values)
        np.maximum.at(highest, buckets, values)
        single, keep = np.flatnonzero(lowest == highest), lowest[buckets] != highest[buckets]
        values, buckets = np.r_[values[keep], lowest[single]], np.r_[buckets[keep], single]
        weights = (np.r_[is_ref[keep], counts[0][single]], np.r_[~is_ref[keep], counts[1][single]])
        order = np.argsort(values)
        self.values, self.buckets, self.before = values[order], buckets[order], before
        self.n = (int(counts[0].sum()), int(counts[1].sum()))
        self.low, self.scale, self.width = geometry
        self.starts = np.r_[True, self.buckets[1:] != self.buckets[:-1]] if len(order) else np.array([], bool)
        first = np.maximum.accumulate(np.where(self.starts, np.arange(len(order)), 0))
        self.counts = []
        for earlier, weight in zip(before, weights, strict=True):
            run = np.cumsum(weight[order])
            self.counts.append(earlier[self.buckets] + run - (run - weight[order])[first])

    def ks_statistic(self, top: float, bottom: float) -> float:
        """scipy's two-sided statistic: D's extremes over all values, the larger side winning ties to max."""
        last = np.r_[self.values[1:] != self.values[:-1], True] if len(self.values) else np.array([], bool)
        d = self.counts[0][last] / self.n[0] - self.counts[1][last] / self.n[1]
        high, low = max(top, d.max(initial=-np.inf)), min(max(-min(bottom, d.min(initial=np.inf)), 0.0), 1.0)
        return float(low if low > high else high)

    def split_area(self, split: np.ndarray) -> float:
        """The integral of |D| over the split buckets, piece by piece between their sorted values."""
        offset = self.values - self.low
        ends = np.r_[self.starts[1:], True]
        following = np.where(ends, (self.buckets + 1) * self.width, np.r_[offset[1:], 0.0])
        gap = np.abs(self.counts[0] / self.n[0] - self.counts[1] / self.n[1]) * (following - offset)
        before = np.abs(self.before[0][self.buckets] / self.n[0] - self.before[1][self.buckets] / self.n[1])
        lead = np.where(self.starts, before * (offset - self.buckets * self.width), 0.0)
        return float(np.sum((gap + lead)[split[self.buckets]]))

    def quantile_edges(self, ranks: np.ndarray, gamma: np.ndarray) -> np.ndarray:
        """The reference's interior bin edges at its quantiles (``np.quantile``'s, duplicates merged), from the
        sorted buckets holding the ranks."""
        if self.n[0] == 0:
            return np.array([])
        a, b = self.values[np.searchsorted(self.counts[0], ranks + 1, side="left")]
        return np.unique(np.where(gamma >= 0.5, b - (b - a) * (1 - gamma), a + (b - a) * gamma))  # numpy's lerp

    def shares(self, edges: np.ndarray, sample: int, rows: int) -> np.ndarray:
        """One sample's (0: reference, 1: current) share of rows per bin between these edges, and of missing
        values in a last bin of their own."""
        below = np.array([], dtype=np.int64)
        if len(edges):
            position = np.searchsorted(self.values, edges, side="left")
            edge_buckets = np.minimum(((edges - self.low) * self.scale).astype(np.int64), len(self.before[0]) - 1)
            inside = (position > 0) & (self.buckets[position - 1] == edge_buckets)
            below = np.where(inside, self.counts[sample][position - 1], self.before[sample][edge_buckets])
        counts = np.diff(np.concatenate([[0], below, [self.n[sample]]]))
        return np.append(counts, rows - self.n[sample]) / max(rows, 1)


def _nan_std(values: np.ndarray) -> np.ndarray:
    present = ~np.isnan(values)
    mean = np.where(present, values, 0.0).sum(axis=1) / present.sum(axis=1)
    deviation = np.where(present, values - mean[:, None], 0.0)
    return np.sqrt(np.einsum("ij,ij->i", deviation, deviation) / present.sum(axis=1))


def _ks_test(statistic, reference, current, n_reference, n_current) -> tuple[np.ndarray, np.ndarray]:
    """scipy's ks_2samp result. Up to ``EXACT_KS_MAX_ROWS`` rows scipy snaps the statistic onto the
    1/lcm(n1, n2) grid and computes the exact null distribution, here by calling it on the column (cheap at
    that size); above, ``ks_p_values`` vectorised."""
    from scipy.stats import ks_2samp

    statistic, p = statistic.copy(), ks_p_values(statistic, n_reference, n_current)
    for j in np.flatnonzero((np.maximum(n_reference, n_current) <= EXACT_KS_MAX_ROWS) & ~np.isnan(statistic)):
        lcm = math.lcm(int(n_reference[j]), int(n_current[j]))
        statistic[j] = round(statistic[j] * lcm) / lcm
        p[j] = ks_2samp(reference[j][~np.isnan(reference[j])], current[j][~np.isnan(current[j])]).pvalue
    return statistic, p


def numeric_stats(reference, current, columns: list[str], bins: int) -> dict[str, dict[str, Any]]:
    """``numeric_drift`` over blocks of columns small enough to bound the memory it adds, on ``THREADS``
    threads: numpy releases the GIL in nearly all of it, so threads use more cores without copying data."""
    rows = len(reference[columns[0]]) + len(current[columns[0]]) if columns else 1
    per_block = max(1, 2 * BLOCK_VALUES // max(rows, 1))
    blocks = [columns[start : start + per_block] for start in range(0, len(columns), per_block)]
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda b: numeric_drift(_stack(reference, b), _stack(current, b), bins), blocks))
    return {
        column: {"kind": "numeric", "test": "ks", **{k: float(v[j]) for k, v in result.items()}}
        for block, result in zip(blocks, results, strict=True)
        for j, column in enumerate(block)
    }


def _stack(data: Mapping[str, Any], columns: list[str]) -> np.ndarray:
    """(columns, rows) float64 with every non-finite or missing value as NaN; a single float column stays a
    view of the caller's array (numeric_drift never writes to its input)."""
    arrays = [_as_float(data[c]) for c in columns]
    block = arrays[0][None] if len(arrays) == 1 else np.stack(arrays)
    infinite = np.isinf(block)
    return np.where(infinite, np.nan, block) if infinite.any() else block


def _as_float(values: Any) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype != object:
        return values.astype(float, copy=False)
    import pandas as pd  # a nullable column (None for missing) arrives as objects

    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
