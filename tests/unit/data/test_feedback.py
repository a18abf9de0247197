"""Label batches checked row by row, and joined to the inference log into labelled production rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlops_assets.data.feedback import LOGGED_AT, TRUNCATED, UNKNOWN_ID, join_feedback, read_label_batches
from mlops_assets.data.snapshot import content_hash
from mlops_assets.errors import DataError
from mlops_assets.serving.inference_log import log_schema
from mlops_assets.spec import load_spec

LABELS = Path("data/breast_cancer/labels")
HEADER = "patient_id,diagnosis\n"


@pytest.fixture
def spec(pipelines: Path):
    """The bundled breast_cancer spec over an empty labels folder, for each test to fill."""
    for file in (pipelines / LABELS).iterdir():
        file.unlink()
    return load_spec(pipelines / "breast_cancer.yaml")


def write_batch(pipelines: Path, name: str, text: str) -> None:
    (pipelines / LABELS / name).write_text(text)


def labels_of(batches) -> dict[str, str]:
    return dict(zip(batches.labels["patient_id"], batches.labels["diagnosis"], strict=True))


def logged_rows(spec, pipelines: Path, served: list[tuple[str, int]]) -> pd.DataFrame:
    """Log rows as the endpoint writes them and pyarrow reads them: each id's features, served at a time (ms)."""
    features = pd.read_csv(pipelines / "data/breast_cancer/features.csv").set_index("patient_id")
    ids, times = [i for i, _ in served], [t for _, t in served]
    n = len(served)
    columns = {
        "request_id": [f"request-{i}" for i in range(n)],
        "timestamp": times,
        "model_version": ["1"] * n,
        "patient_id": ids,
        **{c: features.loc[ids, c].tolist() for c in spec.input_columns},
        "prediction": ["benign"] * n,
        "score": [0.5] * n,
    }
    dtypes = {c: spec.schema_.columns[c].dtype for c in spec.input_columns}
    return pa.Table.from_pydict(columns, schema=log_schema(dtypes, spec.task, "patient_id")).to_pandas()


def test_the_bundled_batch_gives_one_label_per_patient_and_quarantines_nothing(pipelines: Path):
    batches = read_label_batches(load_spec(pipelines / "breast_cancer.yaml"), pipelines)
    assert batches.counts["label_rows"] == batches.counts["accepted"] == len(batches.labels) == 569
    assert batches.quarantined.empty and not batches.unreadable
    assert batches.labels["patient_id"].is_unique


def test_a_truncated_csv_keeps_the_good_earlier_label_and_quarantines_the_cut_row(spec, pipelines: Path):
    write_batch(pipelines, "batch-0001.csv", HEADER + "P0274,malignant\nP0275,benign\n")
    write_batch(pipelines, "batch-0002.csv", HEADER + "P0276,malignant\nP0275,be")
    batches = read_label_batches(spec, pipelines)
    assert labels_of(batches) == {"P0274": "malignant", "P0275": "benign", "P0276": "malignant"}
    cut = batches.quarantined.iloc[0]
    assert (len(batches.quarantined), cut["patient_id"], cut["diagnosis"]) == (1, "P0275", "be")
    assert (cut["_label_file"], cut["_failures"]) == ("batch-0002.csv", TRUNCATED)
    assert batches.counts["truncated"] == 1


@pytest.mark.parametrize(
    ("row", "failure"),
    [
        ("P0001,maybe", "diagnosis: isin(['benign', 'malignant']) got maybe"),
        ("X0001,benign", "patient_id: str_matches('^P[0-9]{4}$') got X0001"),
        ("P0001,", "diagnosis: not_nullable got nan"),
        (",benign", "patient_id: not_nullable got nan"),
    ],
)
def test_a_label_failing_a_schema_check_is_quarantined_with_the_check_named(spec, pipelines: Path, row, failure):
    write_batch(pipelines, "batch-0001.csv", HEADER + f"P0002,benign\n{row}\n")
    batches = read_label_batches(spec, pipelines)
    assert labels_of(batches) == {"P0002": "benign"}
    assert batches.quarantined["_failures"].tolist() == [failure]
    assert batches.counts[failure.split(" got ")[0]] == 1


def test_conflicting_labels_across_batches_keep_the_first_and_quarantine_the_later(spec, pipelines: Path):
    write_batch(pipelines, "batch-0001.csv", HEADER + "P0001,benign\n")
    write_batch(pipelines, "batch-0002.csv", HEADER + "P0001,malignant\nP0002,malignant\n")
    batches = read_label_batches(spec, pipelines)
    assert labels_of(batches) == {"P0001": "benign", "P0002": "malignant"}
    assert batches.labels.set_index("patient_id").loc["P0001", "_label_file"] == "batch-0001.csv"
    later = batches.quarantined.iloc[0]
    assert (later["diagnosis"], later["_label_file"]) == ("malignant", "batch-0002.csv")
    assert later["_failures"] == "conflicts with label 'benign' from batch-0001.csv"
    assert batches.counts["conflicting_with_earlier"] == 1


def test_conflicting_labels_inside_one_file_quarantine_every_label_of_that_id(spec, pipelines: Path):
    write_batch(pipelines, "batch-0001.csv", HEADER + "P0001,benign\nP0001,malignant\nP0002,benign\n")
    write_batch(pipelines, "batch-0002.csv", HEADER + "P0001,benign\n")
    batches = read_label_batches(spec, pipelines)
    assert labels_of(batches) == {"P0002": "benign"}
    assert batches.quarantined["patient_id"].tolist() == ["P0001"] * 3
    assert set(batches.quarantined["_failures"]) == {"conflicting labels for this id within batch-0001.csv"}
    assert batches.counts["conflicting_within_file"] == 3


def test_exact_duplicates_are_counted_not_quarantined(spec, pipelines: Path):
    write_batch(pipelines, "batch-0001.csv", HEADER + "P0001,benign\nP0001,benign\n")
    write_batch(pipelines, "batch-0002.csv", HEADER + "P0001,benign\n")
    batches = read_label_batches(spec, pipelines)
    assert labels_of(batches) == {"P0001": "benign"}
    assert batches.quarantined.empty
    assert (batches.counts["duplicates"], batches.counts["accepted"]) == (2, 1)


def test_an_unparseable_file_is_reported_with_its_reason_and_nothing_from_it_is_used(spec, pipelines: Path):
    write_batch(pipelines, "batch-0001.csv", HEADER + "P0001,benign\n")
    write_batch(pipelines, "batch-0002.csv", HEADER + "P0002,benign\nP0003,benign,a third field\n")
    batches = read_label_batches(spec, pipelines)
    assert labels_of(batches) == {"P0001": "benign"}
    [(file, reason)] = batches.unreadable.items()
    assert file.endswith("batch-0002.csv") and reason.startswith("cannot parse: Error tokenizing data")
    assert [Path(f).name for f in batches.files] == ["batch-0001.csv"]
    assert batches.counts["label_rows"] == 1


def test_a_file_without_the_target_column_is_unreadable(spec, pipelines: Path):
    write_batch(pipelines, "batch-0001.csv", "patient_id,label\nP0001,benign\n")
    batches = read_label_batches(spec, pipelines)
    assert batches.labels.empty and batches.files == []
    assert list(batches.unreadable.values()) == ["no column(s) ['diagnosis']"]


def test_labels_for_unknown_ids_are_quarantined_with_the_reason_and_counted(spec, pipelines: Path):
    write_batch(pipelines, "batch-0001.csv", HEADER + "P0001,benign\nP0002,malignant\nP0003,benign\n")
    labels = read_label_batches(spec, pipelines).labels
    logged = logged_rows(spec, pipelines, [("P0001", 1_000), ("P0004", 2_000)])
    joined = join_feedback(spec, logged, labels, source_ids={"P0002"})
    assert joined.quarantined["patient_id"].tolist() == ["P0003"]
    assert joined.quarantined["_failures"].tolist() == [UNKNOWN_ID]
    assert joined.counts == {
        "logged_rows": 2,
        "logged_ids": 2,
        "labelled_rows": 1,
        "waiting_for_label": 1,
        "source_only_labels": 1,
        "unknown_id_labels": 1,
    }


def test_the_join_keeps_the_newest_logged_row_per_id(spec, pipelines: Path):
    write_batch(pipelines, "batch-0001.csv", HEADER + "P0001,benign\nP0002,malignant\n")
    labels = read_label_batches(spec, pipelines).labels
    logged = logged_rows(spec, pipelines, [("P0001", 5_000), ("P0002", 3_000), ("P0001", 1_000)])
    logged.loc[0, "mean_radius"] = 11.5  # the newest features served for P0001, listed first
    rows = join_feedback(spec, logged, labels, source_ids=None).rows
    assert rows["patient_id"].tolist() == ["P0002", "P0001"]
    assert rows[LOGGED_AT].tolist() == [3_000, 5_000] and rows[LOGGED_AT].dtype == np.int64
    assert rows.set_index("patient_id").loc["P0001", "mean_radius"] == 11.5
    assert list(rows.columns) == [*spec.schema_.columns, LOGGED_AT]


def test_the_feedback_rows_and_their_hash_do_not_depend_on_the_order_of_the_log(spec, pipelines: Path):
    rng = np.random.default_rng(7)
    ids = [f"P{i:04d}" for i in range(40)]
    write_batch(pipelines, "batch-0001.csv", HEADER + "".join(f"{i},benign\n" for i in ids[:30]))
    labels = read_label_batches(spec, pipelines).labels
    served = [(str(rng.choice(ids)), int(t)) for t in rng.choice(10**6, size=200, replace=False)]
    logged = logged_rows(spec, pipelines, served)
    first = join_feedback(spec, logged, labels, source_ids=None).rows
    shuffled = join_feedback(spec, logged.sample(frac=1, random_state=3), labels, source_ids=None).rows
    assert content_hash(first) == content_hash(shuffled)
    assert first.equals(first.sort_values([LOGGED_AT, "patient_id"]).reset_index(drop=True))


def test_every_label_row_read_is_accepted_counted_as_a_duplicate_or_quarantined(spec, pipelines: Path):
    rng = np.random.default_rng(11)
    written = 0
    for batch in range(1, 6):
        n = int(rng.integers(20, 60))
        ids = rng.choice([f"P{i:04d}" for i in range(30)] + ["X1", ""], size=n)
        diagnoses = rng.choice(["benign", "malignant", "maybe", ""], size=n, p=[0.45, 0.45, 0.05, 0.05])
        text = HEADER + "\n".join(f"{i},{d}" for i, d in zip(ids, diagnoses, strict=True))
        write_batch(pipelines, f"batch-{batch:04d}.csv", text + ("\n" if batch % 2 else ""))
        written += n
    batches = read_label_batches(spec, pipelines)
    counts = batches.counts
    assert counts["label_rows"] == written
    assert counts["label_rows"] == counts["accepted"] + counts["duplicates"] + len(batches.quarantined)
    assert counts["truncated"] == 2 and batches.labels["patient_id"].is_unique
    assert batches.quarantined["_failures"].notna().all()


def test_an_empty_log_gives_no_rows_and_leaves_source_labels_alone(spec, pipelines: Path):
    write_batch(pipelines, "batch-0001.csv", HEADER + "P0001,benign\n")
    labels = read_label_batches(spec, pipelines).labels
    empty = pd.DataFrame(columns=["timestamp", "patient_id", *spec.input_columns])
    joined = join_feedback(spec, empty, labels, source_ids={"P0001"})
    assert joined.rows.empty and list(joined.rows.columns) == [*spec.schema_.columns, LOGGED_AT]
    assert (joined.counts["source_only_labels"], joined.counts["unknown_id_labels"]) == (1, 0)


def test_a_log_without_the_id_column_is_an_error_that_says_how_to_log_it(spec, pipelines: Path):
    logged = logged_rows(spec, pipelines, [("P0001", 1_000)]).drop(columns="patient_id")
    with pytest.raises(DataError, match="set id_column: patient_id"):
        join_feedback(spec, logged, read_label_batches(spec, pipelines).labels, source_ids=None)
