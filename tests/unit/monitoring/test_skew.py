"""Training/serving skew judged on inference-log tables whose sampled rows carry what a real fitted model's
transformer and estimator computed for them, with one difference injected at a time."""

from pathlib import Path

import pyarrow as pa
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression

from mlops_assets.data.snapshot import read_source
from mlops_assets.model.pipeline_model import fit_pipeline_model
from mlops_assets.monitoring.skew import judge_skew, newest_sampled
from mlops_assets.serving.app import kept_score
from mlops_assets.serving.inference_log import FEATURES, FEATURES_TYPE, INVALID, log_schema
from mlops_assets.spec import load_spec

PIPELINES = Path(__file__).resolve().parents[3] / "pipelines"
TOLERANCE = 1e-9


def fitted(name: str, estimator):
    spec = load_spec(PIPELINES / f"{name}.yaml")
    frame = read_source(spec, PIPELINES).frame
    return spec, frame, fit_pipeline_model(spec, frame[:300], estimator)


@pytest.fixture(scope="module")
def diabetes():
    return fitted("diabetes", HistGradientBoostingRegressor(max_iter=30, random_state=0))


@pytest.fixture(scope="module")
def breast_cancer():
    return fitted("breast_cancer", LogisticRegression(max_iter=2000))


def served_log(spec, frame, model, version: str = "1", sampled_every: int = 1) -> dict[str, list]:
    """Log columns as the endpoint writes them for ``frame``'s rows scored by ``model``: inputs typed as the
    log keeps them, the prediction and score, and the features of one row in ``sampled_every``."""
    prediction = model.predict(frame)
    features = model.transformer.transform(frame)
    dtypes = {c: spec.schema_.columns[c].dtype for c in spec.input_columns}
    columns = {
        "request_id": [f"r{i}" for i in range(len(frame))],
        "timestamp": [0] * len(frame),
        "model_version": [version] * len(frame),
        **{c: [None if v != v else v for v in frame[c].tolist()] for c in spec.input_columns},
        "prediction": prediction.labels.tolist(),
        "score": kept_score(prediction).tolist(),
        FEATURES: [row.tolist() if i % sampled_every == 0 else None for i, row in enumerate(features)],
    }
    for column, dtype in dtypes.items():
        if dtype == "str":
            columns[column] = [None if v is None else str(v) for v in columns[column]]
    if spec.id_column:
        columns[spec.id_column] = frame[spec.id_column].astype(str).tolist()
    return columns


def table(spec, columns: dict[str, list]) -> pa.Table:
    dtypes = {c: spec.schema_.columns[c].dtype for c in spec.input_columns}
    schema = log_schema(dtypes, spec.task, spec.id_column).append(
        pa.field(FEATURES, FEATURES_TYPE)
    )  # as the writer does
    return pa.Table.from_pydict({name: columns[name] for name in schema.names}, schema=schema)


def test_rows_featurised_offline_as_the_endpoint_did_pass_with_their_counts(breast_cancer):
    spec, frame, model = breast_cancer
    log = table(spec, served_log(spec, frame[300:420], model, sampled_every=3))
    sample = newest_sampled(log, 200)
    assert sample.num_rows == 40  # one row in three carries its features

    verdict = judge_skew(spec, sample, {"1": model}, TOLERANCE)
    assert verdict.passed and verdict.rows == 40 and verdict.by_version == {"1": 40}
    assert verdict.largest <= TOLERANCE and "40 sampled row(s) (v1: 40)" in verdict.message


def test_only_the_newest_sampled_rows_are_compared(breast_cancer):
    spec, frame, model = breast_cancer
    sample = newest_sampled(table(spec, served_log(spec, frame[300:400], model)), 25)
    assert sample.column("request_id").to_pylist() == [f"r{i}" for i in range(75, 100)]


def test_a_feature_the_endpoint_computed_differently_fails_naming_it(breast_cancer):
    spec, frame, model = breast_cancer
    columns = served_log(spec, frame[300:350], model)
    names = model.transformer.output_names
    at = names.index("mean_radius")
    for row in (4, 9):
        columns[FEATURES][row][at] += 0.25
    verdict = judge_skew(spec, newest_sampled(table(spec, columns), 200), {"1": model}, TOLERANCE)

    assert not verdict.passed
    (mismatch,) = verdict.mismatches
    assert mismatch.name == "mean_radius" and mismatch.rows == 2 and mismatch.largest == pytest.approx(0.25)
    assert "request r4" in mismatch.example or "request r9" in mismatch.example
    assert "mean_radius" in verdict.message and verdict.largest == pytest.approx(0.25)


def test_differences_within_float_tolerance_relative_to_the_value_s_size_pass(diabetes):
    spec, frame, model = diabetes
    columns = served_log(spec, frame[300:340], model)
    columns["prediction"] = [p * (1 + 1e-12) for p in columns["prediction"]]  # predictions are in the hundreds
    columns[FEATURES][0][0] += 1e-12
    verdict = judge_skew(spec, newest_sampled(table(spec, columns), 200), {"1": model}, TOLERANCE)
    assert verdict.passed and verdict.largest > 0

    columns["prediction"][3] += 0.5
    verdict = judge_skew(spec, newest_sampled(table(spec, columns), 200), {"1": model}, TOLERANCE)
    (mismatch,) = verdict.mismatches
    assert mismatch.name == "prediction" and mismatch.rows == 1 and mismatch.largest == pytest.approx(0.5, rel=1e-6)


def test_an_input_the_endpoint_coerced_differently_fails_naming_the_column(diabetes):
    spec, frame, model = diabetes
    columns = served_log(spec, frame[300:330], model)
    # the endpoint took a JSON 2.0 for the category "2" and computed its features from "2"; it logged "2.0"
    row = columns["sex"].index("2")
    columns["sex"][row] = "2.0"
    verdict = judge_skew(spec, newest_sampled(table(spec, columns), 200), {"1": model}, TOLERANCE)

    assert not verdict.passed and [m.name for m in verdict.mismatches] == ["sex"]
    assert verdict.mismatches[0].rows == 1 and "refuses" in verdict.mismatches[0].example
    assert "2.0" in verdict.mismatches[0].example


def test_a_derived_feature_computed_differently_fails_naming_it(diabetes):
    spec, frame, model = diabetes
    columns = served_log(spec, frame[300:330], model)
    at = model.transformer.output_names.index("non_hdl_ratio")
    columns[FEATURES][7][at] = columns[FEATURES][7][at] * 1.001
    verdict = judge_skew(spec, newest_sampled(table(spec, columns), 200), {"1": model}, TOLERANCE)
    assert [(m.name, m.rows) for m in verdict.mismatches] == [("non_hdl_ratio", 1)]


def test_a_label_or_score_the_model_would_not_give_fails_naming_the_prediction(breast_cancer):
    spec, frame, model = breast_cancer
    columns = served_log(spec, frame[300:330], model)
    columns["prediction"][2] = "malignant" if columns["prediction"][2] == "benign" else "benign"
    columns["score"][5] = 1 - columns["score"][5]
    verdict = judge_skew(spec, newest_sampled(table(spec, columns), 200), {"1": model}, TOLERANCE)
    assert sorted((m.name, m.rows) for m in verdict.mismatches) == [("prediction", 1), ("score", 1)]


def test_each_version_s_rows_are_compared_with_that_version(breast_cancer):
    spec, frame, model = breast_cancer
    other = fit_pipeline_model(spec, frame[200:500], LogisticRegression(max_iter=2000, C=0.01))
    first = served_log(spec, frame[300:320], model, version="1")
    second = served_log(spec, frame[320:340], other, version="2")
    log = pa.concat_tables([table(spec, first), table(spec, second)])
    verdict = judge_skew(spec, newest_sampled(log, 200), {"1": model, "2": other}, TOLERANCE)
    assert verdict.passed and verdict.by_version == {"1": 20, "2": 20}

    swapped = judge_skew(spec, newest_sampled(log, 200), {"1": other, "2": model}, TOLERANCE)
    assert not swapped.passed and {m.version for m in swapped.mismatches} == {"1", "2"}


def test_no_sampled_row_passes_saying_there_is_nothing_to_compare_yet(breast_cancer):
    spec, frame, model = breast_cancer
    columns = served_log(spec, frame[300:310], model)
    columns[FEATURES] = [None] * 10
    verdict = judge_skew(spec, newest_sampled(table(spec, columns), 200), {}, TOLERANCE)
    assert verdict.passed and verdict.rows == 0 and "nothing to compare yet" in verdict.message


def test_rows_the_endpoint_flagged_invalid_are_left_out(breast_cancer):
    spec, frame, model = breast_cancer
    log = table(spec, served_log(spec, frame[300:310], model))
    flagged = pa.array(["column 'mean_radius': le 50 got 71.2"] + [None] * 9, pa.string())
    verdict = judge_skew(spec, newest_sampled(log.append_column(INVALID, flagged), 200), {"1": model}, TOLERANCE)
    assert verdict.passed and verdict.rows == 9 and verdict.left_out == 1


def test_feature_vectors_of_another_width_than_the_transformer_s_fail(breast_cancer):
    spec, frame, model = breast_cancer
    columns = served_log(spec, frame[300:305], model)
    columns[FEATURES] = [row[:-1] for row in columns[FEATURES]]
    (mismatch,) = judge_skew(spec, newest_sampled(table(spec, columns), 200), {"1": model}, TOLERANCE).mismatches
    assert mismatch.name == FEATURES and "transformer makes" in mismatch.example
    assert mismatch.rows == 5


@pytest.fixture(scope="module")
def wine_torch():
    from mlops_assets.model.torch_mlp import TorchMLP

    return fitted("wine", TorchMLP("multiclass", [16], epochs=3, batch_size=16, learning_rate=0.01, device="cpu"))


def test_a_torch_model_s_scores_may_move_by_float32_rounding_its_features_may_not(wine_torch):
    """The endpoint scores one row per request, the check a batch: float32 kernels round differently. Each
    served row here is scored alone, as the endpoint does, and one score is moved by a few float32 ulps on
    top; a scikit-learn model is not allowed that much, and neither is the transformer's float64 arithmetic."""
    import numpy as np

    spec, frame, model = wine_torch
    rows = frame[100:130]
    columns = served_log(spec, rows, model)
    columns["score"] = [float(kept_score(model.predict(rows.iloc[[i]]))[0]) for i in range(len(rows))]
    nudged = np.float32(columns["score"][3])
    columns["score"][3] = float(np.nextafter(np.nextafter(nudged, np.float32(0)), np.float32(0)))
    verdict = judge_skew(spec, newest_sampled(table(spec, columns), 200), {"1": model}, TOLERANCE)
    assert verdict.passed, verdict.mismatches
    assert 0 < verdict.largest < 1e-6

    columns[FEATURES][4] = [v + 2e-7 for v in columns[FEATURES][4]]
    verdict = judge_skew(spec, newest_sampled(table(spec, columns), 200), {"1": model}, TOLERANCE)
    assert {m.name for m in verdict.mismatches} == set(model.transformer.output_names)
