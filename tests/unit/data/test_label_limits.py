"""Label batches are read within bounds: regular files only, at most ``MLOPS_MAX_LABEL_BYTES`` after
decompression, streamed. A batch past a bound is set aside whole with its reason, as an unparseable one is,
and the others are read as before; files the spec's folder does not hold are never read."""

import gzip
import os
import threading
import tracemalloc
from pathlib import Path

import pandas as pd
import pytest

from mlops_assets.data.feedback import MAX_LABEL_BYTES_ENV, read_label_batches
from mlops_assets.data.locations import find_files, list_files
from mlops_assets.spec import load_spec

LABELS = Path("data/breast_cancer/labels")
HEADER = "patient_id,diagnosis\n"
LIMIT = 1 << 20


@pytest.fixture
def spec(pipelines: Path, monkeypatch):
    """The breast_cancer spec reading every file of an emptied labels folder, with a 1 MiB bound."""
    for file in (pipelines / LABELS).iterdir():
        file.unlink()
    path = pipelines / "breast_cancer.yaml"
    path.write_text(path.read_text().replace(f"path: {LABELS}/*.csv", f"path: {LABELS}/"))
    monkeypatch.setenv(MAX_LABEL_BYTES_ENV, str(LIMIT))
    (pipelines / LABELS / "batch-0001.csv").write_text(HEADER + "P0001,benign\nP0002,malignant\n")
    return load_spec(path)


def labels_of(batches) -> dict[str, str]:
    return dict(zip(batches.labels["patient_id"], batches.labels["diagnosis"], strict=True))


def test_a_batch_over_the_bound_is_set_aside_with_its_size_and_the_others_are_read(spec, pipelines):
    big = pipelines / LABELS / "batch-0002.csv"
    big.write_text(HEADER + "P0003,benign\n" * (LIMIT // 13 + 1))
    batches = read_label_batches(spec, pipelines)
    assert labels_of(batches) == {"P0001": "benign", "P0002": "malignant"}
    assert batches.unreadable == {
        str(big): f"{big.stat().st_size} bytes: more than the {LIMIT} bytes a label batch may hold "
        f"({MAX_LABEL_BYTES_ENV}); split it into smaller batches"
    }
    assert batches.counts["label_rows"] == batches.counts["accepted"] == 2


def test_a_gzip_bomb_stops_at_the_bound_without_decompressing_the_rest(spec, pipelines):
    bomb = pipelines / LABELS / "batch-0002.csv.gz"
    with gzip.open(bomb, "wb") as file:
        file.write(HEADER.encode())
        for _ in range(200):
            file.write(b"P0003,benign\n" * 80_000)  # 200 MB once decompressed
    assert bomb.stat().st_size < LIMIT
    tracemalloc.start()
    batches = read_label_batches(spec, pipelines)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert batches.unreadable[str(bomb)].startswith("once decompressed: more than the 1048576 bytes")
    assert labels_of(batches) == {"P0001": "benign", "P0002": "malignant"}
    assert peak < 20 * LIMIT  # read whole and decompressed at once, it held 200 MB


def test_a_gzip_batch_within_the_bound_reads_as_its_csv_does(spec, pipelines):
    with gzip.open(pipelines / LABELS / "batch-0002.csv.gz", "wt") as file:
        file.write(HEADER + "P0003,benign\nP0004,be")  # cut short, as before
    batches = read_label_batches(spec, pipelines)
    assert labels_of(batches) == {"P0001": "benign", "P0002": "malignant", "P0003": "benign"}
    assert batches.counts["truncated"] == 1 and not batches.unreadable


@pytest.mark.parametrize(
    ("dictionary", "refusal"),
    [(False, "bytes uncompressed in ['patient_id', 'diagnosis']"), (True, "decoded ['patient_id', 'diagnosis']")],
)
def test_a_parquet_batch_is_bounded_by_its_columns_uncompressed_then_decoded(spec, pipelines, dictionary, refusal):
    """Its footer's sizes are checked before anything is decoded; a dictionary of one value, which the footer
    counts once, is caught as the batches are decoded."""
    batch = pipelines / LABELS / "batch-0002.parquet"
    frame = pd.DataFrame({"patient_id": ["P0003"] * 200_000, "diagnosis": ["benign"] * 200_000})
    frame.to_parquet(batch, use_dictionary=dictionary, compression="zstd")  # kilobytes on disk
    assert batch.stat().st_size < LIMIT // 10
    assert f"{refusal}: more than the {LIMIT} bytes" in read_label_batches(spec, pipelines).unreadable[str(batch)]
    frame.head(3).to_parquet(batch)
    assert labels_of(read_label_batches(spec, pipelines))["P0003"] == "benign"


def test_a_fifo_among_the_batches_is_set_aside_without_blocking(spec, pipelines):
    fifo = pipelines / LABELS / "batch-0002.csv"
    os.mkfifo(fifo)
    result = []
    thread = threading.Thread(target=lambda: result.append(read_label_batches(spec, pipelines)), daemon=True)
    thread.start()
    thread.join(30)
    assert result, "reading the label batches blocked on a FIFO"
    assert result[0].unreadable == {str(fifo): "not a regular file (a FIFO)"}
    assert labels_of(result[0]) == {"P0001": "benign", "P0002": "malignant"}


def test_files_outside_the_spec_folder_are_listed_as_refused_and_never_read(spec, pipelines):
    outside = pipelines.parent / "secret.csv"
    outside.write_text(HEADER + "P0009,benign\n")
    (pipelines / LABELS / "batch-0002.csv").symlink_to(outside)
    files, refused = find_files(str(LABELS), pipelines)
    assert [Path(f).name for f in files] == ["batch-0001.csv"]
    assert refused[str(pipelines / LABELS / "batch-0002.csv")].startswith(f"resolves to {outside}, outside")
    assert list_files("../secret.csv", pipelines) == [] and list_files(str(outside), pipelines) == []
    assert "P0009" not in labels_of(read_label_batches(spec, pipelines))
