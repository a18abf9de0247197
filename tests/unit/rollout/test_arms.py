"""Per-arm figures from logged rows: pure functions over real parquet-shaped tables, no server."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.metrics import roc_auc_score

from mlops_assets.model.features import FeatureTransformer
from mlops_assets.model.pipeline_model import PipelineModel
from mlops_assets.monitoring.label_join import Labelled
from mlops_assets.rollout.arms import ArmMetrics, arm_metrics, arms_table
from mlops_assets.rollout.driver import online_comparison
from mlops_assets.spec import load_spec

REPO = Path(__file__).resolve().parents[3]
SPEC = load_spec(REPO / "pipelines" / "breast_cancer.yaml")  # primary metric roc_auc, labels by patient_id


def logged(versions, predictions, scores, ids, champion_predictions=None) -> pa.Table:
    """Rows as the inference log (or, with the champion's answers, the shadow log) stores them."""
    columns = {
        "request_id": [f"r{i}" for i in range(len(ids))],
        "model_version": versions,
        "patient_id": ids,
        "prediction": pa.array(predictions).cast(pa.string()),
        "score": scores,
    }
    if champion_predictions is not None:
        columns["champion_prediction"] = pa.array(champion_predictions).cast(pa.string())
    return pa.table(columns)


def integer_classes() -> PipelineModel:
    """A pipeline whose target is 0/1: the log keeps its predictions as the text "0"/"1"."""
    return PipelineModel("binary", [], FeatureTransformer({}, []), None, [0, 1])


def test_each_version_gets_its_labelled_metric_even_with_integer_classes():
    rng = np.random.default_rng(0)
    n = 400
    truth = rng.integers(0, 2, n)
    scores = np.clip(truth * 0.6 + rng.normal(0.2, 0.25, n), 0, 1)
    versions = ["1" if i % 4 else "2" for i in range(n)]
    table = logged(versions, (scores > 0.5).astype(int).tolist(), scores, [str(i) for i in range(n)])
    labels = pd.DataFrame({"patient_id": [str(i) for i in range(0, n, 2)], "diagnosis": truth[::2]})
    arms = {arm.version: arm for arm in arm_metrics(SPEC, table, labels, integer_classes())}
    for version, arm in arms.items():
        mine = np.array([v == version for v in versions]) & (np.arange(n) % 2 == 0)
        assert arm.rows == sum(v == version for v in versions) and arm.labelled_rows == mine.sum()
        assert math.isclose(arm.value, roc_auc_score(truth[mine], scores[mine]))
        assert arm.low < arm.value < arm.high
        assert math.isclose(arm.positive_share, np.mean(scores[np.array(versions) == version] > 0.5))
    assert "| v1 | served |" in arms_table(list(arms.values()))


def test_shadow_disagreement_is_a_share_for_classes_and_a_mean_distance_for_numbers():
    table = logged(["3"] * 4, [0, 1, 1, 0], [0.1, 0.9, 0.8, 0.2], list("abcd"), champion_predictions=[0, 1, 0, 1])
    (shadow,) = arm_metrics(SPEC, table, pd.DataFrame(), integer_classes(), role="shadow")
    assert (shadow.role, shadow.disagreement, shadow.labelled_rows) == ("shadow", 0.5, 0)
    assert math.isnan(shadow.value) and shadow.as_dict()["value"] is None
    regression = PipelineModel("regression", [], FeatureTransformer({}, []), None, None)
    numbers = pa.table(
        {
            "request_id": ["a", "b"],
            "model_version": ["3", "3"],
            "prediction": [10.0, 20.0],
            "score": [math.nan, math.nan],
            "champion_prediction": [11.0, 17.0],
        }
    )
    (arm,) = arm_metrics(SPEC, numbers, pd.DataFrame(), regression, role="shadow")
    assert arm.disagreement == 2.0 and arm.mean_prediction == 15.0


def arm(version: str, labelled: int, value: float, rows: Labelled | None = None) -> ArmMetrics:
    return ArmMetrics(
        version=version,
        role="served",
        requests=100,
        rows=100,
        mean_prediction=None,
        positive_share=0.5,
        metric="roc_auc",
        labelled_rows=labelled,
        value=value,
        low=value,
        high=value,
        labelled=rows,
    )


def test_the_canary_compares_only_defined_metrics_on_enough_labelled_rows():
    rng = np.random.default_rng(3)
    rows = {}
    for version, noise in (("1", 0.2), ("2", 0.6)):
        truth = rng.integers(0, 2, 80)
        score = np.clip(truth + rng.normal(0, noise, 80), 0, 1)
        rows[version] = Labelled(truth, (score > 0.5).astype(int), np.column_stack([1 - score, score]))
    champion = arm("1", 80, roc_auc_score(rows["1"].y_true, rows["1"].y_score[:, 1]), rows["1"])
    challenger = arm("2", 80, roc_auc_score(rows["2"].y_true, rows["2"].y_score[:, 1]), rows["2"])
    assert online_comparison([champion, challenger], "1", "2", 81) is None  # too few labelled rows
    assert online_comparison([champion, arm("2", 80, math.nan)], "1", "2", 50) is None  # roc_auc of one class
    compared = online_comparison([champion, challenger], "1", "2", 50)
    assert (compared.champion, compared.challenger) == (champion.value, challenger.value)
    assert compared.gain == pytest.approx(challenger.value - champion.value)
    assert compared.gain_low < compared.gain < compared.gain_high < 0  # the noisier model ranks confidently worse
    assert "labelled" not in champion.as_dict()  # the rows stay out of metadata and the audit log
