"""``mlops-assets init`` as a user runs it: a spec drafted from each bundled data file into a copy of
``pipelines/``, checked by ``mlops-assets validate``, and one drafted pipeline trained and gated by Dagster."""

import subprocess
import sys
from pathlib import Path

from mlops_assets.cli import main
from tests.conftest import check, failures, metadata

MLOPS_ASSETS = [sys.executable, "-m", "mlops_assets.cli"]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*MLOPS_ASSETS, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_init_drafts_a_spec_from_each_bundled_file_that_validate_accepts(pipelines, tmp_path):
    for data, target in (("wine/wine.csv", "cultivar"), ("diabetes/diabetes.csv", "progression")):
        name = f"{Path(data).stem}_draft"
        done = run("init", f"pipelines/data/{data}", "--target", target, "--name", name, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-3:] == [
            f"  mlops-assets validate pipelines/{name}.yaml",
            "  mlops-assets instance --home .dagster_home",
            f"  DAGSTER_HOME=$PWD/.dagster_home dg launch -f definitions.py --assets 'group:{name}'",
        ]
    # the breast cancer diagnoses arrive apart from the features (source.labels): no target in the file
    refused = run(
        "init", "pipelines/data/breast_cancer/features.csv", "--target", "diagnosis", "--id", "patient_id", cwd=tmp_path
    )
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "features.csv: --target 'diagnosis' is not a column (columns: patient_id, mean_radius" in refused.stderr

    validated = run("validate", "pipelines", cwd=tmp_path)
    assert validated.returncode == 0, validated.stderr
    assert "pipeline wine_draft, 13 features" in validated.stdout
    assert "pipeline diabetes_draft, 10 features" in validated.stdout


def test_a_drafted_pipeline_trains_and_passes_its_gate(project, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["init", "pipelines/data/wine/wine.csv", "--target", "cultivar"]) == 2  # named wine by its file
    said = "error: pipelines/wine.yaml exists: choose another --output or --name, or overwrite it with --force"
    assert said in capsys.readouterr().err
    assert main(["init", "pipelines/data/wine/wine.csv", "--target", "cultivar", "--name", "wine_draft"]) == 0
    assert "wrote pipelines/wine_draft.yaml: multiclass on cultivar (3 distinct strings)" in capsys.readouterr().out

    names = ("raw_data", "validated_features", "trained_model", "evaluation_report")
    result = project.materialize("wine_draft", *names)
    assert result.success, failures(result)
    assert metadata(result, "wine_draft", "validated_features")["rows_quarantined"] == 0  # its own file fits it
    gate = check(result, "wine_draft", "evaluation_report", "gate")
    assert gate.passed and gate.metadata["threshold_accuracy"].value == "0.52"
