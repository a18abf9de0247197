"""The layering of ``[tool.importlinter]`` in pyproject.toml holds on the package, and breaks on an import that
goes up a layer."""

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
LAYERS = "Layers: entry points > wiring > domains > spec > core"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    # lint-imports puts its working directory first on sys.path: run in `root`, it analyses the mlops_assets there.
    command = [str(LINT_IMPORTS), "--config", str(REPO / "pyproject.toml"), "--no-cache"]
    return subprocess.run(command, cwd=root, capture_output=True, text=True)


def test_the_package_keeps_every_contract():
    done = lint_imports(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_the_spec_importing_the_cli_breaks_the_layers(tmp_path):
    copy = tmp_path / "mlops_assets"
    shutil.copytree(REPO / "mlops_assets", copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "spec" / "upward.py").write_text("import mlops_assets.cli\n")
    done = lint_imports(tmp_path)
    assert done.returncode != 0
    assert f"{LAYERS} BROKEN" in done.stdout
    assert "mlops_assets.spec.upward -> mlops_assets.cli" in done.stdout
