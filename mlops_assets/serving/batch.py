"""Batch scoring: a parquet or CSV dataset scored in record batches, so memory is bounded by the batch, and each
batch scored as one feature matrix, without a Python loop over its rows."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from threadpoolctl import threadpool_limits

from mlops_assets.model.features import FeatureTransformer
from mlops_assets.model.pipeline_model import PipelineModel
from mlops_assets.serving.batch_model import BatchModel
from mlops_assets.spec.data_roots import is_url


def open_dataset(files: list[str]) -> ds.Dataset:
    """Parquet or CSV files (one format) as one dataset, read lazily.

    Parquet is read without pre-buffering: pyarrow's default coalesces the reads of every row group a scan
    will need, which held the whole file in memory (bench/RESULTS.md, "Batch scoring").
    """
    filesystem = None
    if is_url(files[0]):  # a bucket: read through fsspec, as the artifact store is
        from fsspec.core import url_to_fs

        filesystem, _ = url_to_fs(files[0])
        files = [filesystem._strip_protocol(f) for f in files]
    if files[0].endswith(".parquet"):
        options = ds.ParquetFragmentScanOptions(pre_buffer=False)
        parquet = ds.ParquetFileFormat(default_fragment_scan_options=options)
        return ds.dataset(files, format=parquet, filesystem=filesystem)
    return ds.dataset(files, format="csv", filesystem=filesystem)


def read_batches(dataset: ds.Dataset, columns: list[str] | None, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Batches of at most ``batch_rows`` rows, read one at a time: pyarrow's defaults (threaded scan, 16
    batches and 4 files ahead) held more memory for no faster scoring (bench/RESULTS.md, "Batch scoring"). A
    threaded scan with one batch ahead read faster alone, but scoring 10,000,000 rows took as long (9.7 against
    9.2 s on 2 busy cores) at a higher peak (658 against 448 MiB: Arrow's pool held 319 against 152 MiB)."""
    return dataset.to_batches(
        columns=columns, batch_size=batch_rows, batch_readahead=1, fragment_readahead=1, use_threads=False
    )


def score_batches(
    model: PipelineModel, version: str, batches: Iterable[pa.RecordBatch], output: BinaryIO, id_column: str | None
) -> int:
    """Write one row per input row: the id (when given), the prediction, its score and the model version.

    Returns the rows scored. The output (a file open for writing: the artifact store's ``open_write``) is
    written batch by batch through one ``ParquetWriter``, one row group per input batch, so memory holds one
    batch at a time. Each batch is scored without a Python loop over its rows: its numeric inputs are copied
    into one float64 matrix, which the transformer scales in place (``transform_stacked``), its categories are
    looked up by Arrow, and the matrix is scored by the compiled linear function or the estimator
    (``batch_model.BatchModel``, checked against the estimator on the first batch's first rows); predictions and
    the model version are written as Arrow arrays taken from the classes. A model with derived columns, or an
    input Arrow cannot hand over as numbers, is scored as before, by ``PipelineModel.predict`` on the columns.
    """
    classifier = model.classes is not None
    # Predictions and the version are written as dictionaries of their few values: no string built per row,
    # none hashed by the writer. Without the Arrow schema in the file, they read back as plain strings.
    words = pa.dictionary(pa.int32(), pa.string())
    schema = pa.schema(
        [
            *([(id_column, pa.string())] if id_column else []),
            ("prediction", words if classifier else pa.float64()),
            ("score", pa.float64()),
            ("model_version", words),
        ]
    )
    labels = pa.array([str(c) for c in model.classes], pa.string()) if model.classes is not None else None
    versions = pa.array([version], pa.string())
    dictionaries = ["prediction", "model_version"] if classifier else ["model_version"]
    scorer: BatchModel | None = None
    scratch = _Scratch()
    rows = 0
    with (
        pq.ParquetWriter(output, schema, store_schema=False, use_dictionary=dictionaries) as writer,
        threadpool_limits(1, user_api="blas"),  # a product of n x features by one column: threads only wait
    ):
        for batch in batches:
            n = batch.num_rows
            features = _features(model.transformer, batch, scratch)
            if features is None:  # as before: the model's own predict on the columns
                columns = {name: batch.column(name).to_numpy(zero_copy_only=False) for name in batch.schema.names}
                result = model.predict(columns)
                output_ = result.labels if result.proba is None else result.proba
            else:
                if scorer is None:
                    scorer = BatchModel.of(model).checked(features[:CHECKED_ROWS])
                output_ = scorer.outputs(features)
            if classifier:  # the most probable class, as ``Prediction.of`` labels it
                predicted = pa.DictionaryArray.from_arrays(pa.array(output_.argmax(axis=1).astype(np.int32)), labels)
                score = output_[:, 1] if output_.shape[1] == 2 else output_.max(axis=1)
            else:
                predicted, score = pa.array(np.asarray(output_, dtype=np.float64)), np.full(n, np.nan)
            arrays = [
                *([batch.column(id_column).cast(pa.string())] if id_column else []),
                predicted,
                pa.array(score),
                pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), versions),
            ]
            writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
            rows += n
    return rows


CHECKED_ROWS = 1_000  # rows of the first batch the compiled function must reproduce the estimator on

_NUMBERS = (pa.types.is_floating, pa.types.is_integer, pa.types.is_boolean)
_STRINGS = (pa.types.is_string, pa.types.is_large_string)


class _Scratch:
    """The matrices one batch is scored in, reused by the next of as many rows: allocating them anew for every
    batch cost more in page faults than the arithmetic done in them."""

    def __init__(self) -> None:
        self.inputs: np.ndarray | None = None
        self.features: np.ndarray | None = None

    def matrix(self, shape: tuple[int, int]) -> np.ndarray:
        if self.inputs is None or self.inputs.shape != shape:
            self.inputs = np.empty(shape)
        return self.inputs


def _features(transformer: FeatureTransformer, batch: pa.RecordBatch, scratch: _Scratch) -> np.ndarray | None:
    """The batch's feature matrix, as ``transformer.transform`` computes it from the batch's columns, or ``None``
    where it must (derived columns, an input that is not a number or a category Arrow can look up). The matrix is
    ``scratch``'s, overwritten by the next batch."""
    if transformer.derives:
        return None
    names = transformer.stacked_inputs
    matrix = scratch.matrix((len(names), batch.num_rows))  # the one matrix of the batch: scaled in place
    for row, name in zip(matrix, names, strict=True):
        column = batch.column(name)
        if not any(test(column.type) for test in _NUMBERS):
            return None
        if column.type != pa.float64() or column.null_count:  # nulls become NaN, as to_numpy gives them
            column = column.cast(pa.float64(), safe=False)
        row[:] = column.to_numpy(zero_copy_only=False)
    codes = {}
    for name, categories in transformer.categories.items():
        column = batch.column(name)
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        plain = all(isinstance(c, str) for c in categories) and len(set(categories)) == len(categories)
        if not plain or not any(test(column.type) for test in _STRINGS):
            return None
        found = pc.index_in(column, value_set=pa.array(categories, column.type))  # null: unseen, or null
        codes[name] = found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.intp)
    features = transformer.transform_stacked(matrix, names, {}, codes=codes, overwrite=True, out=scratch.features)
    scratch.features = features
    return features
