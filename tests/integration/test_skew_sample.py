"""The features a real endpoint served from, logged for one scoring request in ``skew_sample_every``: the
vectors its code path computed (compiled for a few rows, Python for many), for the training/serving skew check."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlops_assets.serving.app import LoadedModel, create_app
from mlops_assets.serving.inference_log import FEATURES, InferenceLogWriter, log_schema
from mlops_assets.serving.loading import FAST_PATH_MAX_ROWS, with_fast_path
from tests.integration.test_server import DATA, DTYPES, SPEC, call, fitted, serving


def request(start: int, n: int) -> bytes:
    sample = DATA[SPEC.input_columns].iloc[start : start + n]
    return json.dumps(
        {"dataframe_split": {"columns": list(sample.columns), "data": sample.to_numpy().tolist()}}
    ).encode()


def test_the_log_keeps_the_served_features_of_every_second_scoring_request_and_only_those(tmp_path):
    model = fitted(0.5)
    fast = with_fast_path(LoadedModel("1", model), {c: DATA[c].to_numpy() for c in SPEC.input_columns}, 1e-9)
    assert fast.compiled is not None  # requests of up to FAST_PATH_MAX_ROWS rows take the compiled path
    writer = InferenceLogWriter(tmp_path / "log", log_schema(DTYPES, SPEC.task), flush_seconds=0.05)
    app = create_app(SPEC.name, DTYPES, lambda: fast, writer, skew_sample_every=2)
    sizes = [1, 1, FAST_PATH_MAX_ROWS + 50, 1, 3]  # scored requests 0, 2 and 4 are sampled
    starts = np.cumsum([0, *sizes[:-1]])
    answers = []
    with serving(app) as port:
        for i, (start, n) in enumerate(zip(starts, sizes, strict=True)):
            status, _, body = call(port, "POST", "/invocations", request(start, n))
            assert status == 200
            answers.append(json.loads(body)["predictions"])
            if i == 0:  # a request refused before scoring is not counted
                assert call(port, "POST", "/invocations", b"{")[0] == 400
    log = pa.concat_tables(pq.read_table(f) for f in sorted((tmp_path / "log").glob("part-*.parquet")))
    assert log.num_rows == sum(sizes)
    assert log.schema.field(FEATURES).type == pa.list_(pa.float64())
    logged = log.column(FEATURES).to_pylist()
    for i, (start, n) in enumerate(zip(starts, sizes, strict=True)):
        rows = logged[start : start + n]
        if i % 2:
            assert rows == [None] * n, f"request {i} was not sampled"
            continue
        inputs = {c: DATA[c].to_numpy()[start : start + n] for c in SPEC.input_columns}
        expected = model.transformer.transform(inputs)
        assert expected.shape == (n, len(model.transformer.output_names))
        np.testing.assert_array_equal(np.array(rows), expected)
        assert log.column("prediction").to_pylist()[start : start + n] == answers[i]
