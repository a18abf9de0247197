"""Drift plots: a feature's reference against the window, as PNG bytes (matplotlib's non-interactive backend).

A number shows both samples' densities over shared bins, with each sample's missing share in the legend; a
category shows each sample's share per category, categories the reference never had as one ``<unseen>`` bar,
as the statistics count them (``categorical.category_shares``). The figures are small: the drift report
inlines them in its Dagster metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mlops_assets.evaluation.plots import new_figure, png
from mlops_assets.monitoring.drift.categorical import category_shares

MAX_DRIFT_PLOTS = 6  # drifted features plotted per report: each image travels inline in the report's metadata
MAX_CATEGORIES = 12  # bars per category plot: those with the largest share in either sample
NUMERIC_BINS = 30
SAMPLES = (("reference", "tab:blue"), ("window", "tab:orange"))


def drift_plots(kinds: Mapping[str, str], reference: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, bytes]:
    """One PNG per feature of ``kinds`` (feature name to ``"numeric"`` or ``"categorical"``), by feature name,
    from its values in ``reference`` and ``current``."""
    return {
        feature: (numeric_png if kind == "numeric" else categorical_png)(feature, reference[feature], current[feature])
        for feature, kind in kinds.items()
    }


def numeric_png(feature: str, reference: Any, current: Any) -> bytes:
    """Both samples' densities on bins spanning the pooled 0.5-99.5% quantiles; values beyond are counted in
    the outer bins, so one outlier neither hides nor squeezes the rest."""
    values = [_as_float(reference), _as_float(current)]
    present = [v[np.isfinite(v)] for v in values]
    pooled = np.concatenate(present)
    low, high = np.quantile(pooled, [0.005, 0.995]) if pooled.size else (0.0, 1.0)
    if low == high:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, NUMERIC_BINS + 1)
    figure, axes = new_figure(4, 2.8)
    for (name, color), all_values, finite in zip(SAMPLES, values, present, strict=True):
        missing = 1 - finite.size / max(all_values.size, 1)
        label = f"{name}, {missing:.1%} missing" if missing else name
        if finite.size:
            axes.hist(
                np.clip(finite, low, high),
                edges,
                density=True,
                histtype="stepfilled",
                alpha=0.5,
                color=color,
                label=label,
            )
        else:
            axes.plot([], [], color=color, label=f"{name}: no values")
    axes.set(title=f"{feature}: reference vs window", xlabel=feature, ylabel="density")
    axes.legend(fontsize="small")
    return png(figure, dpi=72)


def categorical_png(feature: str, reference: Any, current: Any) -> bytes:
    """Both samples' shares per category, side by side: the ``MAX_CATEGORIES`` largest in either sample, the
    largest reference share first; a category neither sample has is left out."""
    ref_shares, cur_shares, names = category_shares(reference, current)
    larger = np.maximum(ref_shares, cur_shares)
    largest = np.argsort(-larger, kind="stable")[: min(MAX_CATEGORIES, np.count_nonzero(larger))]
    shown = largest[np.argsort(-ref_shares[largest], kind="stable")]
    positions = np.arange(len(shown))
    figure, axes = new_figure(4, 2.8)
    for offset, (name, color), shares in zip((-0.2, 0.2), SAMPLES, (ref_shares, cur_shares), strict=True):
        axes.bar(positions + offset, shares[shown], width=0.4, color=color, label=name)
    axes.set_xticks(positions, [_short(names[i]) for i in shown], rotation=45, ha="right", fontsize="small")
    hidden = np.count_nonzero(larger) - len(shown)
    axes.set(title=f"{feature}: reference vs window", ylabel="share of rows")
    if hidden:
        axes.set_xlabel(f"{hidden} smaller categories not shown", fontsize="small")
    axes.legend(fontsize="small")
    return png(figure, dpi=72)


def _as_float(values: Any) -> np.ndarray:
    """Numbers as float64, a missing or unparseable value as NaN (a nullable column arrives as objects)."""
    import pandas as pd

    return pd.to_numeric(pd.Series(np.asarray(values)), errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _short(name: str, width: int = 16) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"
