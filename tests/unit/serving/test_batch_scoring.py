"""Batch scoring through one feature matrix per record batch and the compiled linear function: the same predictions
as the model's MLflow pyfunc ``predict`` (every model kind, categorical inputs included), read and written one
batch at a time."""

from __future__ import annotations

import io
import itertools
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops_assets.model.pyfunc import PipelineModelWrapper
from mlops_assets.serving.batch import open_dataset, read_batches, score_batches
from mlops_assets.serving.batch_model import BatchModel
from mlops_assets.serving.fast_path import LinearFunction
from tests.unit.serving.one_matrix_models import ESTIMATORS, INPUTS, fit, frame


@pytest.fixture(scope="module", params=list(ESTIMATORS))
def fitted(request, tmp_path_factory):
    data = frame(rows=1500)
    data.loc[data.index[::7], "a"] = np.nan  # nulls, filled with the training mean
    data.loc[data.index[::11], "color"] = None  # a null category
    data.loc[data.index[::13], "color"] = "violet"  # a category never seen in training
    _, model, holdout = fit(tmp_path_factory.mktemp(request.param), request.param, data)
    return request.param, model, holdout


def scored(model, table: pa.Table, batch_rows: int, id_column: str | None = "id", folder=None) -> pa.Table:
    path = folder / "input.parquet"
    pq.write_table(table, path)
    output = io.BytesIO()
    batches = read_batches(open_dataset([str(path)]), None, batch_rows)
    assert score_batches(model, "4", batches, output, id_column) == table.num_rows
    return pq.read_table(io.BytesIO(output.getvalue()))


def test_batch_scoring_predicts_as_the_pyfunc_model_on_the_holdout(fitted, tmp_path):
    kind, model, holdout = fitted
    table = pa.Table.from_pandas(holdout[[*INPUTS, "id"]], preserve_index=False)
    out = scored(model, table, batch_rows=64, folder=tmp_path)

    expected = PipelineModelWrapper(model).predict(None, holdout[INPUTS])  # what mlflow.pyfunc's predict returns
    assert out.column("prediction").to_pylist() == [str(label) for label in expected]
    proba = model.predict({c: holdout[c].to_numpy() for c in INPUTS}).proba
    np.testing.assert_allclose(out.column("score").to_numpy(), proba[:, 1], rtol=0, atol=1e-12)
    assert out.column("id").to_pylist() == holdout["id"].tolist()
    assert set(out.column("model_version").to_pylist()) == {"4"}
    assert out.schema.types == [pa.string(), pa.string(), pa.float64(), pa.string()]  # as before: plain strings
    scorer = BatchModel.of(model)
    assert isinstance(scorer.linear, LinearFunction) == (kind == "logreg")  # trees: the estimator's own loops


def test_batches_are_read_scored_and_written_one_at_a_time(tmp_path):
    _, model, holdout = fit(tmp_path, "logreg", frame(rows=1000))
    path = tmp_path / "input.parquet"
    pq.write_table(pa.Table.from_pandas(holdout[INPUTS], preserve_index=False), path, row_group_size=200)
    output = io.BytesIO()
    written_before = []  # bytes of output when each batch was handed over

    def counted():
        for batch in read_batches(open_dataset([str(path)]), INPUTS, batch_rows=40):
            written_before.append(output.tell())
            yield batch

    assert score_batches(model, "1", counted(), output, None) == len(holdout) == 200
    assert len(written_before) == math.ceil(200 / 40)  # batches of at most 40 rows, never the whole file
    assert pq.ParquetFile(io.BytesIO(output.getvalue())).metadata.num_row_groups == len(written_before)
    assert all(b > a for a, b in itertools.pairwise(written_before))  # each batch written before the next read


def test_a_model_with_derived_columns_or_inputs_arrow_cannot_hand_over_is_scored_as_before(tmp_path):
    _, model, holdout = fit(tmp_path, "logreg", frame(rows=600))
    expected = model.predict({c: holdout[c].to_numpy() for c in INPUTS}).labels
    as_text = holdout[INPUTS].astype({"a": str})  # numbers sent as strings: the columns' own predict converts them
    out = scored(model, pa.Table.from_pandas(as_text, preserve_index=False), 50, None, tmp_path)
    assert out.column("prediction").to_pylist() == [str(v) for v in expected]
    assert out.column_names == ["prediction", "score", "model_version"]


def test_a_regression_model_writes_its_predictions_as_numbers(tmp_path):
    from mlops_assets.model.pipeline_model import PipelineModel

    _, classifier, holdout = fit(tmp_path, "logreg", frame(rows=600))
    from sklearn.linear_model import Ridge

    features = classifier.transformer.transform({c: holdout[c].to_numpy() for c in INPUTS})
    ridge = Ridge().fit(features, holdout["b"].to_numpy())
    model = PipelineModel("regression", INPUTS, classifier.transformer, ridge, None)
    out = scored(model, pa.Table.from_pandas(holdout[INPUTS], preserve_index=False), 30, None, tmp_path)
    expected = model.predict({c: holdout[c].to_numpy() for c in INPUTS}).labels
    np.testing.assert_allclose(out.column("prediction").to_numpy(), expected, rtol=0, atol=1e-9)
    assert out.schema.field("prediction").type == pa.float64()
    assert pd.isna(out.column("score").to_numpy()).all()
