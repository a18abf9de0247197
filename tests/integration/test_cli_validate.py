"""`mlops-assets validate` as a user runs it: one message per broken spec, no traceback, nothing run."""

import subprocess
import sys

from tests.unit.model.test_estimators import with_estimator
from tests.unit.spec.test_pipeline import REPO, write_variant


def test_validate_cli_prints_one_message_without_traceback(pipelines):
    path = write_variant(pipelines, lambda raw: raw.update(task="binery"))
    done = subprocess.run(
        [sys.executable, "-m", "mlops_assets.cli", "validate", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"invalid pipeline spec {path}" in done.stderr and "task:" in done.stderr


def test_validate_cli_checks_estimator_parameters(pipelines):
    path = write_variant(pipelines, lambda raw: raw["model"]["params"].update(colour=1))
    done = subprocess.run(
        [sys.executable, "-m", "mlops_assets.cli", "validate", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "model.params: ['colour'] not accepted by sklearn.linear_model.LogisticRegression" in done.stderr


def test_validate_cli_accepts_the_bundled_specs():
    done = subprocess.run(
        [sys.executable, "-m", "mlops_assets.cli", "validate", str(REPO / "pipelines")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("ok: ") == 3


def test_validate_refuses_popen_without_running_its_command(pipelines, tmp_path):
    witness = tmp_path / "witness"
    path = with_estimator(pipelines, "subprocess.Popen", {"args": ["touch", str(witness)]})
    done = subprocess.run(
        [sys.executable, "-m", "mlops_assets.cli", "validate", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "model.estimator: 'subprocess.Popen'" in done.stderr
    assert not witness.exists()
