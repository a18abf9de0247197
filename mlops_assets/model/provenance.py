"""Where a model came from: the code version, the spec's location, its seed and the environment (every installed
package), recorded on every model version."""

from __future__ import annotations

import hashlib
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

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


def pip_freeze() -> str:
    """Every installed distribution as ``name==version``, one a line, sorted: ``pip freeze`` without a
    subprocess (the training pod may have no pip)."""
    pins = set()
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            pins.add(f"{_normalized(name)}=={dist.version}")
    return "".join(f"{pin}\n" for pin in sorted(pins))


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503: pip freeze lists a name once, however spelt


def freeze_differences(recorded: str, current: str) -> list[str]:
    """What differs between two ``pip_freeze`` texts, one line per package: ``name: 1.0 -> 1.1``, with
    ``absent`` where a side lacks it."""
    before, after = _pins(recorded), _pins(current)
    return [
        f"{name}: {before.get(name, 'absent')} -> {after.get(name, 'absent')}"
        for name in sorted(before.keys() | after.keys())
        if before.get(name) != after.get(name)
    ]


def _pins(text: str) -> dict[str, str]:
    pairs = (line.split("==", 1) for line in text.splitlines() if "==" in line)
    return {_normalized(name): version for name, version in pairs}


SEED_PARAMS = ("random_state", "seed")  # what scikit-learn and the torch trainer call their seed


def seeds(params: dict[str, Any]) -> dict[str, Any]:
    """The estimator's seed parameters (``random_state`` of scikit-learn, ``seed`` of the torch trainer) as
    it was fitted, as JSON values; ``None`` is an unseeded estimator, a ``RandomState`` is named by its repr."""
    plain = (int, str, type(None))
    return {name: v if isinstance(v := params[name], plain) else repr(v) for name in SEED_PARAMS if name in params}


def digest(data: bytes) -> str:
    """SHA-256 of ``data`` (16 hex digits, as the other hashes of a version)."""
    return hashlib.sha256(data).hexdigest()[:16]


HOLDOUT, RECENT_HOLDOUT, QUARANTINE = "holdout", "recent_holdout", "quarantine"


def stored_parts(train_location: str) -> dict[str, str]:
    """Where the parts stored beside a training set are (``training_data.write_training_set`` writes them in
    one folder): the fixed holdout, the recent holdout and the quarantined rows, each of which may be absent."""
    folder = train_location.rsplit("/", 1)[0]
    return {name: f"{folder}/{name}.parquet" for name in (HOLDOUT, RECENT_HOLDOUT, QUARANTINE)}
