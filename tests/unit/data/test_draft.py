"""``data.draft``: a spec inferred from a DataFrame, checked by the spec's own models and by the validation that
training runs, and written as YAML that reads back to the same spec."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops_assets.data.draft import LINEAR_BELOW_ROWS, MAX_CATEGORIES, draft_file, draft_spec, pipeline_name
from mlops_assets.data.validation import validate
from mlops_assets.errors import DataError, SpecError
from mlops_assets.spec import PipelineSpec, load_spec


def churn(rows: int = 40, seed: int = 0) -> pd.DataFrame:
    """A small customer table: an id, numbers of both signs, a category, free text, a flag and a 0/1 label."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:04d}" for i in range(rows)],
            "tenure_months": rng.integers(0, 60, rows),
            "balance": rng.normal(-20.0, 50.0, rows),
            "plan": rng.choice(["basic", "pro", "yes"], rows),  # "yes" needs quoting in YAML
            "note": [f"free text {i}" for i in range(rows)],
            "autopay": rng.choice([True, False], rows),
            "churned": rng.choice([0, 1], rows),
        }
    )


def draft(frame: pd.DataFrame, **kwargs):
    options = {"name": "churn", "target": "churned", "source": "data/churn.csv", **kwargs}
    return draft_spec(frame, **options)


def spec_of(drafted) -> PipelineSpec:
    """The draft as the loader reads it: its YAML, parsed, through the spec's models."""
    return PipelineSpec.model_validate(yaml.safe_load(drafted.to_yaml()))


def test_each_column_gets_its_dtype_and_the_id_and_free_text_are_no_features():
    drafted = draft(churn(), id_column="customer_id")
    columns = drafted.spec["schema"]["columns"]
    assert {c: entry["dtype"] for c, entry in columns.items()} == {
        "customer_id": "str",
        "tenure_months": "int",
        "balance": "float",
        "plan": "str",
        "note": "str",
        "autopay": "bool",
        "churned": "int",
    }
    assert columns["customer_id"] == {"dtype": "str"}
    assert columns["plan"]["isin"] == ["basic", "pro", "yes"]
    assert "isin" not in columns["note"] and drafted.spec["features"]["exclude"] == ["note"]
    spec = spec_of(drafted)
    assert spec.id_column == "customer_id"
    assert spec.input_columns == ["tenure_months", "balance", "plan", "autopay"]


def test_bounds_catch_impossible_values_not_values_past_the_observed_range():
    frame = pd.DataFrame({"x": [3.0, 4.2, 5.0] * 4, "y": [-12.0, 0.5, 40.0] * 4, "c": [5] * 12, "t": [0, 1] * 6})
    columns = draft(frame, target="t").spec["schema"]["columns"]
    assert columns["x"] == {"dtype": "float", "ge": 0, "le": 7}  # no negative value: the sign is the bound
    assert columns["y"] == {"dtype": "float", "ge": -64, "le": 92}  # [-12, 40] widened by 52 each side
    assert columns["c"] == {"dtype": "int", "ge": 0, "le": 10}  # one value: widened by itself


def test_the_draft_keeps_every_row_of_the_file_it_was_drafted_from():
    frame = churn(200)
    frame.loc[::7, "balance"] = np.nan
    frame.loc[::5, "plan"] = None
    frame["churned"] = frame["churned"].astype(float)
    frame.loc[::4, "churned"] = np.nan  # a quarter unlabelled: quarantined, and the share admits them
    drafted = draft(frame, id_column="customer_id")
    spec = spec_of(drafted)
    assert spec.schema_.columns["balance"].nullable and spec.schema_.columns["plan"].nullable
    assert spec.schema_.columns["churned"].dtype == "int" and not spec.schema_.columns["churned"].nullable
    result = validate(spec, frame)
    assert len(result.quarantined) == frame["churned"].isna().sum() == 50
    assert {check.split(":")[0] for check in result.failures_by_check} == {"churned"}  # nothing but the label
    assert spec.schema_.max_quarantine_share == 0.26
    assert "25% of the rows lack churned" in drafted.to_yaml()


def test_a_category_with_isin_makes_the_endpoint_flag_unseen_values_and_says_why():
    with_category = draft(churn())
    assert with_category.spec["deployment"] == {"on_invalid": "flag"}
    assert "plan accepts only the categories of this file (isin)" in with_category.to_yaml()
    numbers_only = draft(churn()[["tenure_months", "balance", "churned"]])
    assert "deployment" not in numbers_only.spec and "features" not in numbers_only.spec
    assert spec_of(numbers_only).deployment.on_invalid == "reject"


def test_a_string_column_with_many_values_is_excluded_from_the_features():
    frame = pd.DataFrame({"city": [f"c{i % (MAX_CATEGORIES + 1)}" for i in range(100)], "y": np.arange(100.0)})
    drafted = draft(frame, target="y")
    assert drafted.spec["features"] == {"exclude": ["city"]}
    assert "city: 21 distinct strings: not features as they are" in drafted.to_yaml()


@pytest.mark.parametrize(
    ("target", "given", "task", "why"),
    [
        (["a", "b"] * 10, None, "binary", "2 distinct strings"),
        (["a", "b", "c", "d"] * 5, None, "multiclass", "4 distinct strings"),
        ([0, 1, 2] * 6 + [0, 1], None, "multiclass", "3 distinct whole numbers"),
        ([True, False] * 10, None, "binary", "2 distinct booleans"),
        (list(np.linspace(0, 1, 20)), None, "regression", "20 distinct numbers"),
        (list(range(20)), None, "regression", "20 distinct numbers"),  # many whole numbers: a count
        ([0, 1, 2] * 6 + [0, 1], "regression", "regression", "3 distinct numbers"),
        (list(range(20)), "classification", "multiclass", "20 distinct whole numbers"),
    ],
)
def test_the_task_is_inferred_from_the_target_unless_given(target, given, task, why):
    frame = pd.DataFrame({"x": np.arange(20.0), "label": target})
    drafted = draft(frame, target="label", task=given)
    assert drafted.spec["task"] == task and f"({why})" in drafted.summary
    assert spec_of(drafted).task == task


@pytest.mark.parametrize(
    ("edit", "options", "message"),
    [
        (lambda f: f.iloc[:0], {}, "no rows"),
        (lambda f: f, {"target": "churn"}, "--target 'churn' is not a column (columns: customer_id, tenure_months"),
        (lambda f: f, {"id_column": "cust"}, "--id 'cust' is not a column"),
        (lambda f: f, {"id_column": "plan"}, "id column 'plan' is not unique"),
        (lambda f: f.assign(customer_id=None), {"id_column": "customer_id"}, "id column 'customer_id' is empty"),
        (lambda f: f, {"id_column": "churned"}, "--id 'churned' is the target"),
        (lambda f: f.assign(churned=1), {}, "target 'churned' has 1 distinct value(s)"),
        (lambda f: f, {"target": "plan", "task": "regression"}, "target 'plan' holds strings"),
        (lambda f: f, {"target": "balance", "task": "classification"}, "target 'balance' holds fractional"),
        (lambda f: f, {"task": "multiclass"}, "--task multiclass: target 'churned' has 2 classes"),
    ],
)
def test_a_file_that_cannot_make_a_pipeline_is_refused_naming_the_column(edit, options, message):
    with pytest.raises(DataError, match="^" + re.escape(message)):
        draft(edit(churn()), **options)


def test_the_model_and_the_gate_fit_the_task_and_the_size():
    small = draft(churn())
    assert small.spec["model"] == {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 1000}}
    assert small.spec["evaluation"] == {"gate": {"thresholds": {"roc_auc": 0.6}}}
    large = draft(churn(LINEAR_BELOW_ROWS))
    assert large.spec["model"]["estimator"] == "sklearn.ensemble.HistGradientBoostingClassifier"
    regression = draft(churn(), target="balance")
    assert regression.spec["model"] == {"estimator": "sklearn.linear_model.Ridge"}
    assert regression.spec["evaluation"]["gate"]["thresholds"] == {"r2": 0.1}
    frame = pd.DataFrame({"x": np.arange(20.0), "kind": ["a"] * 10 + ["b"] * 6 + ["c"] * 4})
    multiclass = draft(frame, target="kind")  # guessing "a" scores 0.5: the floor is a fifth of the way to 1
    assert multiclass.spec["evaluation"]["gate"]["thresholds"] == {"accuracy": 0.6}


def test_the_yaml_reads_back_to_the_draft_with_its_comments():
    drafted = draft(churn(), id_column="customer_id")
    text = drafted.heading() + drafted.to_yaml()
    assert yaml.safe_load(text) == drafted.spec
    assert text.startswith("# Drafted by `mlops-assets init` from data/churn.csv (40 rows, 7 columns)")
    assert "task: binary  # inferred: churned holds 2 distinct whole numbers\n" in text
    assert "    plan: {dtype: str, isin: [basic, pro, 'yes']}\n" in text
    assert max(len(line) for line in text.splitlines()) <= 120
    indented = drafted.to_yaml(2)
    assert yaml.safe_load("attributes:\n" + indented)["attributes"] == drafted.spec


def test_a_drafted_file_loads_as_a_spec_from_its_folder(tmp_path):
    data = tmp_path / "data" / "churn.parquet"
    data.parent.mkdir()
    churn().to_parquet(data)
    spec_file = tmp_path / "churn.yaml"
    drafted = draft_file(data, spec_file, name="churn", target="churned", id_column="customer_id")
    assert drafted.spec["source"] == {"path": "data/churn.parquet"}
    spec_file.write_text(drafted.heading() + drafted.to_yaml())
    assert load_spec(spec_file).input_columns == ["tenure_months", "balance", "plan", "autopay"]


def test_a_draft_file_names_the_file_and_refuses_data_the_spec_may_not_read(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match=f"^{re.escape(str(tmp_path / 'empty.csv'))}: no rows"):
        draft_file(tmp_path / "empty.csv", tmp_path / "s.yaml", name="s", target="y")
    (tmp_path / "notes.txt").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="a source is a CSV or parquet file"):
        draft_file(tmp_path / "notes.txt", tmp_path / "s.yaml", name="s", target="b")
    outside = tmp_path / "elsewhere.csv"
    churn().to_csv(outside, index=False)
    with pytest.raises(
        SpecError, match=r"source\.path: '\.\./elsewhere\.csv' resolves to .* outside the spec's folder"
    ):
        draft_file(outside, tmp_path / "specs" / "churn.yaml", name="churn", target="churned")


def test_a_copied_source_is_placed_beside_the_spec_and_removed_when_the_draft_is_refused(tmp_path):
    data = tmp_path / "churn.csv"
    churn().to_csv(data, index=False)
    folder = tmp_path / "defs" / "churn"
    drafted = draft_file(data, folder / "defs.yaml", name="churn", target="churned", copy_into="data")
    assert drafted.spec["source"] == {"path": "data/churn.csv"} and (folder / "data" / "churn.csv").is_file()
    (folder / "data" / "churn.csv").unlink()
    with pytest.raises(SpecError, match="name: String should match pattern"):
        draft_file(data, folder / "defs.yaml", name="Churn", target="churned", copy_into="data")
    assert not (folder / "data" / "churn.csv").exists()


@pytest.mark.parametrize(
    ("file", "name"), [("churn.csv", "churn"), ("Churn-Data 2024.csv.gz", "churn_data_2024"), ("2024.csv", None)]
)
def test_the_pipeline_name_comes_from_the_file_name(file, name):
    assert pipeline_name(Path(file)) == name
