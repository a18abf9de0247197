"""Drift statistics as pure functions: reference and current values in, effect sizes and tests out.

A feature drifts when an effect size exceeds its threshold (numbers: PSI or W1 over the reference's std;
categories: Jensen-Shannon distance) and its test (KS; chi-squared), corrected over all tests of the report,
rejects at alpha. The effect size decides: with a large window the test alone flags shifts too small to
matter. The test guards the other side: in a small window the effect size alone is often noise.

Missing values follow the same rule. Categories count them as one more category. The KS test sees only
present numbers, so a numeric feature's missing share is tested on its own (when either sample has a missing
value): the JS distance between the samples' (missing, present) shares against the feature's ``js``
threshold, and the chi-squared test of those counts. The distance is steep near zero: at the default 0.1 a
column that had no missing value drifts once about 2% of the window is missing, while 10% becoming 15% does
not. Two schema breaks are verdicts without a test: a column absent from the window, and a column with no
value in a window of rows when the reference had values.

Categories are compared by the text Arrow casts them to, the form the inference log stores (1 is "1",
True "true", 1.5 "1.5"), so a reference of the model's int classes meets the logged strings.

The effect sizes live in ``divergence``, the exact numeric statistics in ``numeric``, the categorical ones
in ``categorical``, the correction in ``correction``; this module holds the decision and the report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mlops_assets.monitoring.drift.categorical import categorical_stats, chi2_test
from mlops_assets.monitoring.drift.correction import adjust_p_values
from mlops_assets.monitoring.drift.divergence import js_distance
from mlops_assets.monitoring.drift.numeric import numeric_stats
from mlops_assets.spec.drift import DriftConfig


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's verdict and every number behind it; ``thresholds`` are the ones that applied."""

    feature: str
    kind: str  # "numeric", "categorical" or "missing" (absent from the current window: schema drift)
    drifted: bool
    reason: str | None = None  # why it drifted: "absent", "no values", or "distribution" and/or "missing share"
    psi: float | None = None
    wasserstein: float | None = None  # W1 between the samples over the reference's standard deviation
    js: float | None = None  # Jensen-Shannon distance, base 2, in [0, 1]
    thresholds: dict[str, float] = field(default_factory=dict)
    test: str | None = None  # "ks" (numeric) or "chi2" (categorical)
    statistic: float | None = None  # KS D or chi-squared
    p_value: float | None = None
    p_adjusted: float | None = None  # after the report's multiple-testing correction
    unseen_share: float | None = None  # share of current values in categories the reference never had
    reference_missing_share: float | None = None
    missing_share: float | None = None  # share of current values missing
    missing_js: float | None = None  # numeric: JS distance between the samples' (missing, present) shares
    missing_p_value: float | None = None  # numeric: chi-squared test of the (missing, present) counts
    missing_p_adjusted: float | None = None


_ADJUSTED = {"p_value": "p_adjusted", "missing_p_value": "missing_p_adjusted"}  # the tests a report corrects


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
            f" unseen | missing (reference → current) | missing JS | missing p ({self.correction}) | drifted |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for f in self.features:
            thresholds = ", ".join(f"{k} {v:g}" for k, v in f.thresholds.items())
            missing = "" if f.missing_share is None else f"{_fmt(f.reference_missing_share)} → {_fmt(f.missing_share)}"
            cells = [*map(_fmt, [f.psi, f.wasserstein, f.js]), thresholds, f.test or ""]
            cells += [*map(_fmt, [f.statistic, f.p_value, f.p_adjusted, f.unseen_share]), missing]
            cells += [*map(_fmt, [f.missing_js, f.missing_p_adjusted]), f"yes: {f.reason}" if f.drifted else "no"]
            lines.append(f"| {f.feature} | {f.kind} | {' | '.join(cells)} |")
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


def compute_drift(
    reference: Mapping[str, Any],
    current: Mapping[str, Any],
    dtypes: Mapping[str, str],
    config: DriftConfig,
) -> DriftReport:
    """Per-feature drift of ``current`` against ``reference``; ``dtypes`` gives each feature's spec dtype
    ("str" is categorical, anything else numeric). The rule and the schema breaks are the module
    docstring's."""
    present = [c for c in dtypes if c in current]
    numeric = [c for c in present if dtypes[c] != "str"]
    stats = numeric_stats(reference, current, numeric, config.bins)
    for c in numeric:
        s = stats[c]
        s.update(missing_shift(s["reference_missing_share"], len(reference[c]), s["missing_share"], len(current[c])))
    stats.update({c: categorical_stats(reference[c], current[c]) for c in present if dtypes[c] == "str"})
    tests = [(s, name) for s in stats.values() for name in _ADJUSTED if name in s]
    adjusted = adjust_p_values([s[name] for s, name in tests], config.correction)
    for (s, name), p in zip(tests, adjusted, strict=True):
        s[_ADJUSTED[name]] = float(p)
    features = [
        _verdict(c, stats[c], len(current[c]) > 0, config) if c in stats else FeatureDrift(c, "missing", True, "absent")
        for c in dtypes
    ]
    n_ref, n_cur = (len(next(iter(data.values()), [])) for data in (reference, current))
    return DriftReport(n_ref, n_cur, config.correction, config.alpha, features)


def missing_shift(
    reference_share: float, reference_rows: int, current_share: float, current_rows: int
) -> dict[str, float]:
    """Effect size and test of a change in the missing share: the JS distance between the samples'
    (missing, present) shares and the chi-squared p-value of those counts. No test (NaN) when either sample
    is empty, or the pooled samples have no missing value or no present one: nothing could differ."""
    shares = np.array([[reference_share, 1 - reference_share], [current_share, 1 - current_share]])
    counts = np.rint(shares * [[reference_rows], [current_rows]])
    testable = reference_rows > 0 and current_rows > 0 and counts.sum(axis=0).min() > 0
    p_value = chi2_test(counts[0], counts[1])[1] if testable else math.nan
    return {"missing_js": js_distance(shares[0], shares[1]), "missing_p_value": p_value}


def _verdict(column: str, s: dict[str, Any], has_rows: bool, config: DriftConfig) -> FeatureDrift:
    """The rule for one feature's statistics; a window of rows without a single value, where the reference
    had values, drifts whatever the tests say: there is nothing left to test."""
    missing_tested = not math.isnan(s.get("missing_p_value", math.nan))
    limits = config.thresholds(column, s["kind"], missing_tested)
    shifted = any(s[k] > v for k, v in limits.items() if k != "missing_js") and s["p_adjusted"] < config.alpha
    missing = missing_tested and s["missing_js"] > limits["missing_js"] and s["missing_p_adjusted"] < config.alpha
    if has_rows and s["missing_share"] == 1 and s["reference_missing_share"] < 1:
        reason = "no values"
    else:
        reason = ", ".join(r for r, hit in (("distribution", shifted), ("missing share", missing)) if hit) or None
    return FeatureDrift(column, drifted=reason is not None, reason=reason, thresholds=limits, **s)
