"""Evaluation plots as PNG bytes, drawn with matplotlib's non-interactive backend; ``new_figure`` and ``png``
serve the drift plots too."""

from __future__ import annotations

import io

import numpy as np


def png(figure, dpi: int = 80) -> bytes:
    """``figure`` drawn as PNG bytes, then closed: pyplot keeps every open figure until it is."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    return buffer.getvalue()


def new_figure(width: float = 4.5, height: float = 4):
    """A figure and its axes on the non-interactive backend: no display is needed where assets run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def roc_curve_png(y_true: np.ndarray, score: np.ndarray, label: str) -> bytes:
    """ROC of a binary classifier; ``y_true`` holds 0/1 and ``score`` the probability of class 1."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(y_true, score)
    figure, axes = new_figure()
    axes.plot(fpr, tpr, label=f"{label} (AUC {roc_auc_score(y_true, score):.3f})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC on the holdout")
    axes.legend(loc="lower right")
    return png(figure)


def confusion_matrix_png(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> bytes:
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(y_true, y_pred, labels=np.arange(len(classes)))
    figure, axes = new_figure()
    axes.imshow(matrix, cmap="Blues")
    axes.set(
        xticks=range(len(classes)),
        yticks=range(len(classes)),
        xticklabels=classes,
        yticklabels=classes,
        xlabel="predicted",
        ylabel="actual",
        title="Confusion matrix (holdout)",
    )
    for (i, j), count in np.ndenumerate(matrix):
        axes.text(j, i, str(count), ha="center", va="center")
    return png(figure)


def residuals_png(y_true: np.ndarray, y_pred: np.ndarray) -> bytes:
    figure, axes = new_figure()
    axes.scatter(y_pred, y_true - y_pred, s=10, alpha=0.6)
    axes.axhline(0, color="grey", linestyle="--")
    axes.set(xlabel="predicted", ylabel="actual - predicted", title="Residuals on the holdout")
    return png(figure)
