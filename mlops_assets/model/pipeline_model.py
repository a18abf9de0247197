"""The deployable model: the fitted feature transformer, the estimator and the label encoding, as one object.

It is what MLflow stores (wrapped by ``pyfunc.PipelineModelWrapper``) and what the endpoint calls.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_assets.model.features import Columns, FeatureTransformer

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec


@dataclass
class Prediction:
    """Model output for a batch: ``labels`` as the caller knows them, and ``proba`` for classifiers.

    ``features`` is the transformer's output the estimator scored (one row per input row, columns in
    ``transformer.output_names`` order): kept, not computed again, so that the endpoint can log the very
    vectors it served from (the training/serving skew check compares them with the training transformer's).
    """

    labels: np.ndarray
    proba: np.ndarray | None
    features: np.ndarray | None = None

    @classmethod
    def of(cls, classes: list[Any] | None, output: np.ndarray, features: np.ndarray) -> Prediction:
        """A model's answer from its output: the predictions themselves for regression (``classes`` is
        ``None``), else the class probabilities, each row labelled with its most probable class."""
        if classes is None:
            return cls(labels=output, proba=None, features=features)
        return cls(labels=np.asarray(classes, dtype=object)[output.argmax(axis=1)], proba=output, features=features)


@dataclass
class PipelineModel:
    task: str
    input_columns: list[str]
    transformer: FeatureTransformer
    estimator: Any
    classes: list[Any] | None  # label of each class index, classification only

    def predict(self, columns: Columns) -> Prediction:
        features = self.transformer.transform(columns)
        score = self.estimator.predict if self.classes is None else self.estimator.predict_proba
        return Prediction.of(self.classes, np.asarray(score(features), dtype=float), features)

    def evaluate(self, frame, target: str, metric_names: list[str]) -> dict[str, float]:
        """The named metrics on ``frame``, which carries the ``target`` column."""
        from mlops_assets.model.metrics import compute_metrics

        prediction = self.predict(frame)
        y = self.encode_target(np.asarray(frame[target]))
        labels = prediction.labels if self.classes is None else self.encode_target(prediction.labels)
        return compute_metrics(metric_names, y, labels, prediction.proba)

    def encode_target(self, y: np.ndarray) -> np.ndarray:
        """Class indices for classification targets, floats for regression."""
        if self.classes is None:
            return np.asarray(y, dtype=float)
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index[v] for v in np.asarray(y).tolist()])


def fit_pipeline_model(
    spec: PipelineSpec, train: Columns, estimator: Any, sample_weight: np.ndarray | None = None
) -> PipelineModel:
    """Fit transformer and estimator on the training split; classes are the sorted target values.

    ``sample_weight`` (the training window's recency, a drift's importance weights) goes to the
    estimator's ``fit``; an estimator that takes none gets a weighted resample of the rows instead, so
    every estimator learns the weighted distribution.
    """
    y = np.asarray(train[spec.target])
    classes = None if spec.task == "regression" else sorted(set(y.tolist()))
    transformer = FeatureTransformer.from_spec(spec).fit(train)
    model = PipelineModel(spec.task, spec.input_columns, transformer, estimator, classes)
    features, target = transformer.transform(train), model.encode_target(y)
    if sample_weight is None:
        estimator.fit(features, target)
    elif "sample_weight" in inspect.signature(estimator.fit).parameters:
        estimator.fit(features, target, sample_weight=sample_weight)
    else:
        rows = np.random.default_rng(spec.split.seed).choice(
            len(target), len(target), p=sample_weight / sample_weight.sum()
        )
        estimator.fit(features[rows], target[rows])
    return model
