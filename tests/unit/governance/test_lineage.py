"""The pure parts of lineage and reproduce: the tree as text, pip freeze differences, seeds, the tolerance."""

from mlops_assets.governance.lineage import render
from mlops_assets.governance.reproduce import TORCH_CUDA_TOLERANCE, TORCH_TOLERANCE, tolerance
from mlops_assets.model.provenance import freeze_differences, pip_freeze, seeds
from mlops_assets.spec import PipelineSpec

TREE = {
    "pipeline": "churn",
    "version": "3",
    "source": {
        "files": ["data/churn.csv"],
        "snapshot": "/s/churn/raw/abc.parquet",
        "snapshot_hash": "abc",
        "rows": 100,
        "quarantined_rows": 2,
    },
    "feedback": {"hash": "none", "rows_by_origin": {"source": 70}, "label_rows_quarantined": 0},
    "training_set": {"key": "churn/features/f1/train.parquet", "hash": "t1", "rows": 70, "features_version": "f1"},
    "model": {
        "version": "3",
        "mlflow_run_id": "r1",
        "estimator": "LogisticRegression",
        "device": "cpu",
        "params": {"C": "1.0"},
        "seed": {"random_state": 0},
        "spec_hash": "s1",
        "spec_file_hash": "sf1",
        "spec_location": "/specs/churn.yaml",
        "git_sha": "a" * 40,
        "git_dirty": True,
        "package_version": "0.1.0",
        "environment_digest": "e1",
        "trigger": "manual",
        "dagster_run_id": "d1",
    },
    "evaluation": {"metrics": {"holdout_roc_auc": 0.91}, "gate": "passed", "evidence": "/s/churn/reports/v3"},
    "deployment": {
        "aliases": ["champion"],
        "approved_by": "alice",
        "deployed_at": "2026-01-01T00:00:00+00:00",
        "endpoint": "http://127.0.0.1:5000",
    },
}


def test_the_tree_reads_from_source_files_down_to_the_endpoint_in_order():
    text = render(TREE)
    order = ["data/churn.csv", "-> snapshot abc", "-> feedback none", "-> training set t1", "-> model v3",
             "-> evaluation: gate passed", "-> deployment: champion"]  # fmt: skip
    positions = [text.index(part) for part in order]
    assert positions == sorted(positions)
    assert "(100 rows, 2 quarantined)" in text and "(dirty: uncommitted changes)" in text
    assert "roc_auc 0.9100" in text and "serving at http://127.0.0.1:5000" in text


def test_a_version_never_deployed_says_so():
    tree = {**TREE, "deployment": {"aliases": [], "approved_by": None, "deployed_at": None, "endpoint": None}}
    assert render(tree).endswith("-> deployment: never deployed")


def test_freeze_differences_name_each_changed_added_and_removed_package_once():
    recorded = "numpy==2.0.0\nScikit_Learn==1.5.0\npandas==2.2.0\n"
    current = "numpy==2.1.0\nscikit-learn==1.5.0\ntorch==2.4.0\n"
    assert freeze_differences(recorded, current) == [
        "numpy: 2.0.0 -> 2.1.0",
        "pandas: 2.2.0 -> absent",
        "torch: absent -> 2.4.0",
    ]
    assert freeze_differences(pip_freeze(), pip_freeze()) == []


def test_pip_freeze_lists_this_environment_sorted_with_versions():
    lines = pip_freeze().splitlines()
    assert lines == sorted(lines) and all("==" in line for line in lines)
    assert any(line.startswith("scikit-learn==") for line in lines)


def test_seeds_are_the_seed_parameters_as_json_values():
    import numpy as np

    assert seeds({"C": 1.0, "random_state": 0}) == {"random_state": 0}
    assert seeds({"random_state": None}) == {"random_state": None}
    assert seeds({"seed": 7, "epochs": 3}) == {"seed": 7}
    assert seeds({"random_state": np.random.RandomState(0)})["random_state"].startswith("RandomState")


def spec(model: dict) -> PipelineSpec:
    return PipelineSpec.model_validate(
        {"name": "p", "task": "binary", "target": "y", "source": {"path": "d.csv"},
         "schema": {"columns": {"x": {"dtype": "float"}, "y": {"dtype": "str"}}}, "model": model}
    )  # fmt: skip


def test_scikit_learn_metrics_must_match_exactly_and_torch_within_a_stated_tolerance():
    assert tolerance(spec({"estimator": "sklearn.linear_model.LogisticRegression"}), ("cpu", "cpu")) == 0.0
    torch = spec({"torch": {"hidden_layers": [4]}})
    assert tolerance(torch, ("cpu", "cpu")) == TORCH_TOLERANCE
    assert tolerance(torch, ("cuda:0", "cpu")) == TORCH_CUDA_TOLERANCE
