"""Estimated accuracy of a multiclass model from the winning class's probability, the one the log keeps."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB

from mlops_assets.model.pipeline_model import Prediction
from mlops_assets.monitoring.estimation import Calibrator, NotEstimable, estimate
from mlops_assets.monitoring.performance import estimated_performance, served_calibrator
from mlops_assets.serving.app import kept_score

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def digits():
    """Gaussian naive Bayes on scikit-learn's digits: 10 classes, about 87 % right while its winning-class
    probability averages 0.99, so the estimate stands or falls with its calibration. 500 rows train it, 600
    are the holdout it is calibrated on, the other 697 are served."""
    x, y = load_digits(return_X_y=True)
    x_train, x_rest, y_train, y_rest = train_test_split(x, y, train_size=500, random_state=0, stratify=y)
    x_holdout, x_served, y_holdout, y_served = train_test_split(
        x_rest, y_rest, train_size=600, random_state=0, stratify=y_rest
    )
    model = GaussianNB().fit(x_train, y_train)
    calibrator = Calibrator(model.predict_proba(x_holdout), y_holdout)
    return SimpleNamespace(model=model, calibrator=calibrator, x=x_served, y=y_served)


def served(digits, rows: np.ndarray) -> tuple[np.ndarray, float]:
    """What the log keeps of ``rows`` (the winning class's probability) and the accuracy labels would show."""
    proba = digits.model.predict_proba(digits.x[rows])
    logged = kept_score(Prediction(labels=proba.argmax(axis=1), proba=proba))
    return logged, float(np.mean(proba.argmax(axis=1) == digits.y[rows]))


def test_under_covariate_shift_the_estimate_follows_the_realised_accuracy_where_the_raw_confidence_does_not(digits):
    """The windows are chosen by the inputs alone (the ink of a digit), so ``P(y | x)`` holds in each."""
    ink = digits.x.sum(axis=1)
    light, heavy = ink < np.quantile(ink, 1 / 3), ink > np.quantile(ink, 2 / 3)
    realised = {}
    for name, rows in (("light", light), ("heavy", heavy)):
        logged, realised[name] = served(digits, rows)
        found = estimate("accuracy", logged, digits.calibrator, 0.95)
        assert abs(found.value - realised[name]) < 0.02
        assert found.low <= realised[name] <= found.high
        assert np.mean(logged) - realised[name] > 0.08  # uncalibrated, the model's own confidence is far off
    assert realised["heavy"] - realised["light"] > 0.05  # the shift moves the accuracy the estimate followed


def test_under_concept_change_the_estimate_is_confidently_wrong_and_only_labels_can_tell(digits):
    """The honest failure: the same images, but half the digits now mean the next one."""
    rows = np.arange(len(digits.y))
    logged, _ = served(digits, rows)
    proba = digits.model.predict_proba(digits.x)
    relabelled = np.where(digits.y < 5, (digits.y + 1) % 5, digits.y)
    realised = np.mean(proba.argmax(axis=1) == relabelled)
    found = estimate("accuracy", logged, digits.calibrator, 0.95)
    assert realised < 0.5 and found.low > realised + 0.3


def test_roc_auc_of_a_multiclass_model_is_refused_naming_the_field(digits):
    logged, _ = served(digits, np.arange(50))
    with pytest.raises(NotEstimable, match=r"monitoring\.performance\.estimated: roc_auc .* 10-class model"):
        estimate("roc_auc", logged, digits.calibrator, 0.95)


def test_the_report_estimates_a_multiclass_window_from_its_logged_scores_as_they_are(digits):
    logged, _ = served(digits, np.arange(len(digits.y)))
    window = pa.table({"model_version": ["3"] * len(logged), "score": logged})
    performance = SimpleNamespace(metric="accuracy", floor=0.9, confidence=0.95, estimated=True)
    spec = SimpleNamespace(monitoring=SimpleNamespace(performance=performance))
    found = estimated_performance(spec, window, "3", digits.calibrator)
    assert found.value == estimate("accuracy", logged, digits.calibrator, 0.95).value and found.decayed


def wine_model(metric: str):
    """The bundled wine spec (three classes) asking for an estimate of ``metric``, a model fitted on half its
    rows, and the other half stored as the holdout beside its training set, as ``validated_features`` does."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from mlops_assets.model.pipeline_model import fit_pipeline_model
    from mlops_assets.model.provenance import HOLDOUT, stored_parts
    from mlops_assets.spec import load_spec
    from tests.unit.fakes import MemoryArtifactStore

    spec = load_spec(REPO / "pipelines" / "wine.yaml")
    frame = pd.read_csv(REPO / "pipelines" / spec.source.path).sample(frac=1.0, random_state=0)
    train, holdout = frame.iloc[: len(frame) // 2], frame.iloc[len(frame) // 2 :]
    model = fit_pipeline_model(spec, train, LogisticRegression(max_iter=5000))
    store, training_set = MemoryArtifactStore(), "wine/features/abc/train.parquet"
    store.write_table(stored_parts(training_set)[HOLDOUT], pa.Table.from_pandas(holdout, preserve_index=False))
    performance = SimpleNamespace(metric=metric, floor=0.5, confidence=0.95, estimated=True)
    asking = SimpleNamespace(target=spec.target, monitoring=SimpleNamespace(performance=performance))
    return asking, store, model, training_set, holdout


def test_the_drift_report_calibrates_a_multiclass_champion_on_its_holdout():
    spec, store, model, training_set, holdout = wine_model("accuracy")
    calibrator = served_calibrator(spec, store, model, training_set)
    assert calibrator is not None and calibrator.classes == 3
    prediction = model.predict(holdout)
    window = pa.table({"model_version": ["1"] * len(holdout), "score": kept_score(prediction)})
    found = estimated_performance(spec, window, "1", calibrator)
    realised = float(np.mean(prediction.labels == holdout[spec.target].to_numpy()))
    assert found.metric == "accuracy" and found.rows == len(holdout)
    assert found.low <= realised <= found.high  # calibrated on these very rows: it must find their accuracy


def test_a_multiclass_roc_auc_estimate_is_refused_before_the_holdout_is_read():
    spec, store, model, training_set, _ = wine_model("roc_auc")
    with pytest.raises(NotEstimable, match=r"monitoring\.performance\.estimated: roc_auc .* 3-class"):
        served_calibrator(spec, store, model, training_set)
