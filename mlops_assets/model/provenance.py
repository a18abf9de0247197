"""Where a model came from: the code version, the spec's location and the environment, recorded on every model
version."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
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


def git_sha(directory: Path, tracked: Path | None = None) -> str | None:
    """The commit checked out around ``directory``, with ``-dirty`` when tracked files differ from it;
    ``None`` outside git, or when ``tracked`` is given and that repository does not track it."""
    try:
        sha = _git(directory, "rev-parse", "HEAD")
        if tracked is not None:
            _git(directory, "ls-files", "--error-unmatch", str(tracked))
        dirty = _git(directory, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha


def _git(directory: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True, check=True, timeout=30)
    return done.stdout.strip()


def code_version(spec_location: Path) -> dict[str, str]:
    """The version of the code that trains (this package's commit and release) and, apart from it, where
    the spec lives (a file or its folder) and that folder's commit.

    The two differ: specs usually live in a user's folder, often outside any repository, while the code is
    this package. Its commit counts only when its repository tracks this file: a copy installed into a
    virtual environment inside some other repository would otherwise record that repository's commit.
    """
    spec_dir = spec_location if spec_location.is_dir() else spec_location.parent
    return {
        "git_sha": git_sha(PACKAGE_DIR, tracked=Path(__file__)) or "unknown",
        "package_version": package_version("mlops-assets") or "unknown",
        "spec_location": str(spec_location.resolve()),
        "spec_git_sha": git_sha(spec_dir) or "none",
    }


def environment() -> dict[str, str]:
    """Interpreter, platform and the versions of the packages that decide a model's behaviour."""
    env = {"python": sys.version.split()[0], "platform": platform.platform()}
    env.update({name: package_version(name) or "absent" for name in TRACKED_PACKAGES})
    return env
