"""Where a model came from: the code version and the environment, recorded on every model version."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

TRACKED_PACKAGES = (
    "mlops-assets",
    "dagster",
    "mlflow",
    "numpy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "torch",
)


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git_sha(directory: Path) -> str:
    """The commit of ``directory``'s repository, with ``-dirty`` when files differ; ``unknown`` outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=directory,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def code_version(directory: Path) -> dict[str, str]:
    return {"git_sha": git_sha(directory), "package_version": package_version("mlops-assets") or "unknown"}


def environment() -> dict[str, str]:
    """Interpreter, platform and the versions of the packages that decide a model's behaviour."""
    env = {"python": sys.version.split()[0], "platform": platform.platform()}
    env.update({name: package_version(name) or "absent" for name in TRACKED_PACKAGES})
    return env
