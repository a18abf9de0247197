"""`mlops-assets validate` against hostile folders, as a user runs it: a FIFO named like a spec, estimator
parameters that would crash or fail later. One message per problem naming the file and the field, no
traceback, no hang."""

import os
import subprocess
import sys

from tests.unit.model.test_estimators import with_estimator


def validate(*paths) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "mlops_assets.cli", "validate", *map(str, paths)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_a_fifo_in_the_folder_is_named_and_refused_without_hanging(pipelines):
    os.mkfifo(pipelines / "evil.yaml")
    done = validate(pipelines)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"invalid pipeline spec {pipelines / 'evil.yaml'}" in done.stderr
    assert "not a regular file (a FIFO)" in done.stderr


def test_a_pipeline_without_its_steps_is_a_message_not_a_traceback(pipelines):
    done = validate(with_estimator(pipelines, "sklearn.pipeline.Pipeline", {}))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "model.params: sklearn.pipeline.Pipeline requires 'steps'" in done.stderr


def test_a_parameter_value_the_estimator_refuses_fails_validate_not_training(pipelines):
    path = with_estimator(pipelines, "sklearn.ensemble.RandomForestClassifier", {"n_estimators": "many"})
    done = validate(path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"invalid pipeline spec {path}" in done.stderr
    assert "model.params.n_estimators: The 'n_estimators' parameter of RandomForestClassifier" in done.stderr
