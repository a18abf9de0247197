"""Batch scoring: a parquet or CSV dataset scored in record batches, so memory is bounded by the batch."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from mlops_assets.data.locations import is_url
from mlops_assets.model.pipeline_model import PipelineModel


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
    batches and 4 files ahead) held more memory for no faster scoring (bench/RESULTS.md, "Batch scoring")."""
    return dataset.to_batches(
        columns=columns, batch_size=batch_rows, batch_readahead=1, fragment_readahead=1, use_threads=False
    )


def score_batches(
    model: PipelineModel, version: str, batches: Iterable[pa.RecordBatch], output: BinaryIO, id_column: str | None
) -> int:
    """Write one row per input row: the id (when given), the prediction, its score and the model version.

    Returns the rows scored. The output (a file open for writing: the artifact store's ``open_write``) is
    written batch by batch through one ``ParquetWriter``.
    """
    prediction_type = pa.float64() if model.classes is None else pa.string()
    schema = pa.schema(
        [
            *([(id_column, pa.string())] if id_column else []),
            ("prediction", prediction_type),
            ("score", pa.float64()),
            ("model_version", pa.string()),
        ]
    )
    rows = 0
    with pq.ParquetWriter(output, schema) as writer:
        for batch in batches:
            columns = {name: batch.column(name).to_numpy(zero_copy_only=False) for name in batch.schema.names}
            result = model.predict(columns)
            labels = result.labels if model.classes is None else [str(v) for v in result.labels]
            if result.proba is None:
                score = np.full(batch.num_rows, np.nan)
            else:
                score = result.proba[:, 1] if result.proba.shape[1] == 2 else result.proba.max(axis=1)
            arrays = [
                *([pa.array(columns[id_column]).cast(pa.string())] if id_column else []),
                pa.array(labels, prediction_type),
                pa.array(score),
                pa.array(np.full(batch.num_rows, version, dtype=object), pa.string()),
            ]
            writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
            rows += batch.num_rows
    return rows
