"""Batch scoring's model: a fitted ``PipelineModel`` run on record batches of many rows, through the compiled
linear function where there is one (``fast_path``), else through the estimator on one feature matrix a batch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlops_assets.model.pipeline_model import PipelineModel, Prediction
from mlops_assets.serving.fast_path import LinearFunction, compile_model


@dataclass(frozen=True)
class BatchModel:
    """A ``PipelineModel`` as batch scoring runs it on record batches of many rows: the features computed as one
    matrix per batch (``FeatureTransformer.transform_stacked``), scored by the compiled linear function where there
    is one (the same operations as scikit-learn's, without its validation pass over the input), else by the
    estimator's own ``predict_proba``/``predict`` on that matrix: from a few hundred rows scikit-learn's compiled
    tree loops are faster than the per-level numpy of ``TreeEnsemble``. No per-row Python
    either way. ``checked`` drops the compiled function if it does not reproduce the estimator on given rows."""

    model: PipelineModel
    linear: LinearFunction | None

    @classmethod
    def of(cls, model: PipelineModel) -> BatchModel:
        try:
            compiled = compile_model(model)
        except Exception:  # a fitted attribute a scikit-learn release renamed: the estimator scores
            compiled = None
        linear = compiled.evaluator if compiled is not None else None
        return cls(model, linear if isinstance(linear, LinearFunction) else None)

    @property
    def description(self) -> str:
        kind = type(self.model.estimator).__name__
        return f"compiled:{kind}" if self.linear is not None else f"{kind} on one feature matrix per batch"

    def outputs(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities (classifiers) or predictions (regression) for the rows of ``features``."""
        if self.linear is not None:
            return self.linear(features)
        estimator = self.model.estimator
        score = estimator.predict if self.model.classes is None else estimator.predict_proba
        return np.asarray(score(features), dtype=float)

    def predict(self, features: np.ndarray) -> Prediction:
        return Prediction.of(self.model.classes, self.outputs(features), features)

    def checked(self, features: np.ndarray, tolerance: float = 1e-9) -> BatchModel:
        """This model, without its compiled function unless that gives the estimator's labels on ``features``
        and its probabilities (or predictions) within ``tolerance``."""
        if self.linear is None or len(features) == 0:
            return self
        expected = BatchModel(self.model, None).predict(features)
        try:
            actual = self.predict(features)
            close = np.abs(actual.labels - expected.labels) if expected.proba is None else None
            same = (
                bool((close <= tolerance).all())
                if close is not None
                else bool((actual.labels == expected.labels).all())
                and actual.proba is not None  # else a TypeError, caught below: not the same either
                and expected.proba is not None
                and float(np.abs(actual.proba - expected.proba).max()) <= tolerance
            )
        except Exception:
            same = False
        return self if same else BatchModel(self.model, None)
