"""A model version records the commit of the code that trained it, and apart from it where its spec lives."""

import subprocess
from pathlib import Path

import pytest

from mlops_assets.model.provenance import code_version

REPO = Path(__file__).resolve().parents[2]


def git(directory: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args]
    return subprocess.run(command, cwd=directory, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def code_commit() -> str:
    """This checkout's commit, as git itself reports it; the test needs a checkout, not an installed wheel."""
    try:
        sha = git(REPO, "rev-parse", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("the package is not in a git checkout")
    return f"{sha}-dirty" if git(REPO, "status", "--porcelain", "--untracked-files=no") else sha


@pytest.fixture
def outside_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder no repository contains, wherever the temporary folder lives."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    folder = tmp_path / "specs"
    folder.mkdir()
    return folder


def test_a_spec_outside_git_still_records_the_code_commit(outside_git, code_commit):
    spec = outside_git / "churn.yaml"
    spec.write_text("name: churn\n")
    version = code_version(spec)
    assert version["git_sha"] == code_commit
    assert version["spec_location"] == str(spec.resolve())
    assert version["spec_git_sha"] == "none"


def test_a_spec_in_its_own_repository_records_that_commit_apart_from_the_code(outside_git, code_commit):
    spec = outside_git / "churn.yaml"
    spec.write_text("name: churn\n")
    git(outside_git, "init", "-q")
    git(outside_git, "add", "churn.yaml")
    git(outside_git, "commit", "-q", "-m", "spec")
    spec_commit = git(outside_git, "rev-parse", "HEAD")
    version = code_version(spec)
    assert (version["git_sha"], version["spec_git_sha"]) == (code_commit, spec_commit)
    spec.write_text("name: churn_v2\n")
    assert code_version(outside_git)["spec_git_sha"] == f"{spec_commit}-dirty"
