"""The type checker ``make lint`` runs (``[tool.mypy]`` in pyproject.toml) covers the endpoint, the rollout and the
assets, and fails on a type error."""

import shutil
import subprocess
import sys
import tomllib

import pytest

from tests.conftest import REPO

pytest.importorskip("mypy")

CHECKED = {"mlops_assets/rollout", "mlops_assets/serving", "mlops_assets/assets"}


def mypy(*files, cache) -> subprocess.CompletedProcess:
    # files named on the command line replace the config's `files`; the rest of the config applies
    command = [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"), "--cache-dir", str(cache)]
    return subprocess.run([*command, *map(str, files)], cwd=REPO, capture_output=True, text=True)


def test_make_lint_type_checks_the_rollout_the_endpoint_and_the_assets():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]
    assert set(config["files"]) >= CHECKED
    assert not config.get("ignore_errors") and not config.get("ignore_missing_imports")
    lint = (REPO / "Makefile").read_text().split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "$(BIN)/mypy" in lint


def test_a_type_error_in_a_module_fails_the_check(tmp_path):
    # a module of the endpoint as it is, and a copy calling its own class with a wrong argument
    clean, broken = tmp_path / "http_clean.py", tmp_path / "http_broken.py"
    shutil.copyfile(REPO / "mlops_assets" / "serving" / "http.py", clean)
    broken.write_text(clean.read_text() + '\n\nWRONG = HttpError("401", "a status is an int")\n')
    done = mypy(clean, broken, cache=tmp_path / "cache")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "http_clean.py" not in done.stdout
    assert "http_broken.py:" in done.stdout and "[arg-type]" in done.stdout
    assert "Found 1 error in 1 file" in done.stdout
