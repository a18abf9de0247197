from pathlib import Path

import pandas as pd
import pytest

from mlops_assets.data.snapshot import content_hash, read_source
from mlops_assets.data.validation import split_holdout, validate
from mlops_assets.errors import DataError
from mlops_assets.spec import load_spec

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def spec():
    return load_spec(REPO / "pipelines" / "breast_cancer.yaml")


@pytest.fixture
def frame(spec):
    return read_source(spec, REPO / "pipelines").frame


def test_bad_rows_are_quarantined_with_every_reason(spec, frame):
    frame = frame.astype({"mean_texture": object})
    frame.loc[3, "mean_radius"] = -1.0
    frame.loc[5, "mean_texture"] = "abc"
    frame.loc[7, "diagnosis"] = "unknown"
    frame.loc[9, "mean_area"] = None
    result = validate(spec, frame)
    assert len(result.kept) + len(result.quarantined) == len(frame)
    reasons = dict(zip(result.quarantined["patient_id"], result.quarantined["_failures"], strict=True))
    assert reasons == {
        "P0003": "mean_radius: greater_than(0.0) got -1.0",
        "P0005": "mean_texture: coerce_dtype('float64') got abc",
        "P0007": "diagnosis: isin(['benign', 'malignant']) got unknown",
        "P0009": "mean_area: not_nullable got nan",
    }
    assert result.kept["mean_texture"].dtype == "float64"
    assert sum(result.failures_by_check.values()) == 4


def test_clean_data_keeps_every_row(spec, frame):
    result = validate(spec, frame)
    assert len(result.kept) == len(frame) and result.quarantined.empty


def test_unknown_and_missing_columns_fail_the_whole_batch_with_a_clear_message(spec, frame):
    with pytest.raises(DataError, match=r"unknown column 'extra'.*drop or keep"):
        validate(spec, frame.assign(extra=1))
    with pytest.raises(DataError, match="missing column 'mean_area'"):
        validate(spec, frame.drop(columns=["mean_area"]))


def test_unknown_columns_can_be_dropped(spec, frame):
    relaxed = spec.model_copy(update={"schema_": spec.schema_.model_copy(update={"unknown_columns": "drop"})})
    assert "extra" not in validate(relaxed, frame.assign(extra=1)).kept.columns


def test_split_is_deterministic_and_complete(frame):
    train, holdout = split_holdout(frame, 0.2, seed=3)
    again, _ = split_holdout(frame, 0.2, seed=3)
    other, _ = split_holdout(frame, 0.2, seed=4)
    assert len(train) + len(holdout) == len(frame) and len(holdout) == round(0.2 * len(frame))
    assert train["patient_id"].tolist() == again["patient_id"].tolist()
    assert train["patient_id"].tolist() != other["patient_id"].tolist()
    assert not set(train["patient_id"]) & set(holdout["patient_id"])


def test_content_hash_depends_on_rows_not_files(frame, tmp_path):
    assert content_hash(frame) == content_hash(frame.copy())
    changed = frame.copy()
    changed.loc[0, "mean_radius"] += 0.001
    assert content_hash(changed) != content_hash(frame)


def test_a_later_label_never_overwrites_an_earlier_one_and_unlabeled_rows_are_counted(spec, pipelines):
    labels = pipelines / "data" / "breast_cancer" / "labels"
    first = pd.read_csv(labels / "batch-0001.csv")
    first.iloc[:500].to_csv(labels / "batch-0001.csv", index=False)
    conflict = first.iloc[[0]].assign(diagnosis="malignant" if first.diagnosis[0] == "benign" else "benign")
    conflict.to_csv(labels / "batch-0002.csv", index=False)
    source = read_source(spec, pipelines)
    assert len(source.frame) == 500 and source.unlabeled_rows == len(first) - 500
    assert source.frame.set_index("patient_id").loc["P0000", "diagnosis"] == first.diagnosis[0]
    assert [Path(f).name for f in source.label_files] == ["batch-0001.csv", "batch-0002.csv"]
