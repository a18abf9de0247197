"""What ``pip install mlops-assets`` puts in site-packages: the framework and its console script, nothing else.

The repository's top-level ``resources/``, ``sensors/`` and ``definitions.py`` are its own code location; shipped
as top-level modules they would shadow, or be shadowed by, a user's packages of the same names.
"""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_installs_only_the_framework(tmp_path: Path):
    # built from a copy of the checkout: setuptools writes build/ beside the sources it builds
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".*", "__pycache__", "build", "*.egg-info"))
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", wheels, source],
        check=True,
    )
    (wheel,) = wheels.glob("mlops_assets-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.startswith("mlops_assets-")}
    assert top_level == {"mlops_assets"}
    # the framework's own resources and sensors are in it, under its name
    assert {"mlops_assets/resources/__init__.py", "mlops_assets/sensors/__init__.py"} <= set(names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "mlops-assets = mlops_assets.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
