"""A spec's data, label batches and batch inputs may live in a bucket (in production, labels land there, not in an
image): the same reads, quarantine and sensor checks as on a local folder, through an S3-compatible store (moto on
loopback)."""

from pathlib import Path

import fsspec
import pandas as pd
import yaml

from mlops_assets.data.feedback import TRUNCATED, read_label_batches
from mlops_assets.data.locations import file_version, list_files
from mlops_assets.data.snapshot import read_source
from mlops_assets.sensors.labels import readable
from mlops_assets.serving.batch import open_dataset, read_batches
from mlops_assets.spec import load_spec

HEADER = "patient_id,diagnosis\n"


def put(url: str, data: bytes) -> None:
    with fsspec.open(url, "wb") as file:
        file.write(data)


def spec_reading(pipelines: Path, bucket: str):
    """The bundled breast_cancer spec with its features and its label batches in ``bucket``."""
    put(f"{bucket}/data/features.csv", (pipelines / "data/breast_cancer/features.csv").read_bytes())
    path = pipelines / "breast_cancer.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["source"]["path"] = f"{bucket}/data/*.csv"
    raw["source"]["labels"]["path"] = f"{bucket}/labels/"
    path.write_text(yaml.safe_dump(raw))
    return load_spec(path)  # not listed while loading: the bucket may be empty, or away


def test_files_in_a_bucket_are_listed_by_folder_glob_or_name_and_only_data_files(s3_bucket, tmp_path):
    for name in ("b.csv", "a.parquet", "notes.txt", "sub/c.csv"):
        put(f"{s3_bucket}/in/{name}", b"x")
    assert list_files(f"{s3_bucket}/in/", tmp_path) == [f"{s3_bucket}/in/a.parquet", f"{s3_bucket}/in/b.csv"]
    assert list_files(f"{s3_bucket}/in/*.csv", tmp_path) == [f"{s3_bucket}/in/b.csv"]
    assert list_files(f"{s3_bucket}/in/b.csv", tmp_path) == [f"{s3_bucket}/in/b.csv"]
    assert list_files(f"{s3_bucket}/nothing/", tmp_path) == []


def test_labels_in_a_bucket_are_read_with_the_same_quarantine_and_joined_to_the_data(pipelines, s3_bucket):
    spec = spec_reading(pipelines, s3_bucket)
    put(f"{s3_bucket}/labels/batch-0001.csv", (HEADER + "P0000,malignant\nP0001,benign\n").encode())
    put(f"{s3_bucket}/labels/batch-0002.csv", (HEADER + "P0002,malignant\nP0001,be").encode())  # cut short
    batches = read_label_batches(spec, pipelines)
    labels = dict(zip(batches.labels["patient_id"], batches.labels["diagnosis"], strict=True))
    assert labels == {"P0000": "malignant", "P0001": "benign", "P0002": "malignant"}
    cut = batches.quarantined.iloc[0]
    assert (cut["patient_id"], cut["_label_file"], cut["_failures"]) == ("P0001", "batch-0002.csv", TRUNCATED)

    source = read_source(spec, pipelines)
    assert source.files == [f"{s3_bucket}/data/features.csv"] and len(source.frame) == 3
    assert source.label_files == [f"{s3_bucket}/labels/batch-0001.csv", f"{s3_bucket}/labels/batch-0002.csv"]


def test_the_labels_sensor_checks_and_versions_a_batch_in_a_bucket(s3_bucket):
    url = f"{s3_bucket}/labels/batch.csv"
    put(url, b'\xef\xbb\xbf"patient_id","diagnosis"\nP0001,benign\n')
    assert readable(url, {"patient_id", "diagnosis"}) is None
    before = file_version(url)
    put(url, (HEADER + "P0001,benign\nP0002,malignant\n").encode())  # written again: a new batch
    assert file_version(url) != before
    put(f"{s3_bucket}/labels/other.csv", b"patient_id,label\nP0001,benign\n")
    assert readable(f"{s3_bucket}/labels/other.csv", {"patient_id", "diagnosis"}) == "missing column(s) ['diagnosis']"


def test_a_batch_to_score_in_a_bucket_is_read_in_record_batches(s3_bucket, pipelines, tmp_path):
    features = pipelines / "data/breast_cancer/features.csv"
    put(f"{s3_bucket}/score/part-1.csv", features.read_bytes())
    files = list_files(f"{s3_bucket}/score/", tmp_path)
    batches = list(read_batches(open_dataset(files), ["patient_id", "mean_radius"], 200))
    assert sum(b.num_rows for b in batches) == len(pd.read_csv(features))
    assert max(b.num_rows for b in batches) <= 200
