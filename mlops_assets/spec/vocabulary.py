"""Names the spec validates against whose meaning lives in a domain package: the metrics (``model.metrics``
computes them), the fairness limits (``evaluation.fairness``), the metrics estimated before labels arrive
(``monitoring.estimation``). The names are here, below the domains, so that loading a spec imports none of them.
"""

from __future__ import annotations

# Each metric, in the order a task lists them, with the tasks it is defined for: ``model.metrics.METRICS``
# computes each one (tests/unit/model/test_metrics.py holds the two to the same names).
METRIC_TASKS: dict[str, tuple[str, ...]] = {
    "roc_auc": ("binary",),
    "accuracy": ("binary", "multiclass"),
    "f1": ("binary",),
    "f1_macro": ("multiclass",),
    "log_loss": ("binary", "multiclass"),
    "rmse": ("regression",),
    "mae": ("regression",),
    "r2": ("regression",),
}

_DEFAULT_METRICS = {
    "binary": ["roc_auc", "accuracy", "f1", "log_loss"],
    "multiclass": ["accuracy", "f1_macro", "log_loss"],
    "regression": ["rmse", "mae", "r2"],
}

CLASSIFICATION_LIMITS = ("demographic_parity_difference", "equalized_odds_difference")  # evaluation.fairness
REGRESSION_LIMITS = ("error_gap",)

ESTIMABLE = ("accuracy", "roc_auc")  # estimated from the served probabilities (monitoring.estimation)


def default_metrics(task: str) -> list[str]:
    """Metrics reported when the spec names none; the first is the primary one."""
    return list(_DEFAULT_METRICS[task])
