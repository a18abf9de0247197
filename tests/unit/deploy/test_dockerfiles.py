"""deploy/Dockerfile (endpoint, code location, MLflow server) and deploy/Dockerfile.trainer (training pods), read
statically: no Docker engine here. Each is held to a pinned base image, a non-root user, torch at the project's pin
and the `production` extra; each check is shown to fail on a Dockerfile that breaks it."""

from __future__ import annotations

import re
import tomllib

import pytest

from mlops_assets.model.k8s_pod import TRAINING_COMMAND
from tests.unit.deploy.test_manifests import REPO

DOCKERFILES = {"image": REPO / "deploy" / "Dockerfile", "trainer": REPO / "deploy" / "Dockerfile.trainer"}
IMAGE_USER = 10001  # runAsUser of the manifests and the Helm values


def torch_pin() -> str:
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [d for d in dependencies if re.match(r"torch\s*==", d)]
    return pin.split("==")[1].strip()


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined and comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [(m[1].upper(), m[2].strip()) for m in re.finditer(r"^\s*(\w+)\s+(.*)$", joined, re.M)]


def problems(text: str, torch_version: str) -> list[str]:
    steps = instructions(text)
    found = []
    for _, image in [s for s in steps if s[0] == "FROM"]:
        if not re.search(r":\d+\.\d+\.\d+[\w.-]*$|@sha256:[0-9a-f]{64}$", image.split()[0]):
            found.append(f"base image {image!r} is not pinned to a full version or a digest")
    users = [args for name, args in steps if name == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        found.append("the image runs as root (no USER, or USER root last)")
    runs = " ".join(args for name, args in steps if name == "RUN")
    if f"torch=={torch_version}" not in runs or set(re.findall(r"torch==([\w.+]+)", runs)) != {torch_version}:
        found.append(f"torch is not installed at the project's pin {torch_version}")
    if not re.search(r"pip install [\"']?\.\[production\]", runs):
        found.append("the package is not installed with its production extra")
    return found


@pytest.mark.parametrize("name", DOCKERFILES)
def test_each_dockerfile_is_pinned_non_root_and_installs_the_production_extra(name):
    assert problems(DOCKERFILES[name].read_text(), torch_pin()) == []


@pytest.mark.parametrize("name", DOCKERFILES)
def test_the_image_user_is_the_one_the_manifests_run_as(name):
    runs = [args for step, args in instructions(DOCKERFILES[name].read_text()) if step == "RUN"]
    assert any(f"useradd --create-home --uid {IMAGE_USER} mlops" in run for run in runs)


def test_the_trainer_runs_the_training_entry_point_on_a_cuda_build_of_torch():
    steps = instructions(DOCKERFILES["trainer"].read_text())
    assert ("CMD", str(list(TRAINING_COMMAND)).replace("'", '"')) in steps
    args = dict(a.split("=", 1) for name, a in steps if name == "ARG" and "=" in a)
    assert re.fullmatch(r"cu\d{3}", args["CUDA"])  # a PyTorch CUDA build tag, e.g. cu130
    assert args["TORCH_INDEX_URL"].endswith("/${CUDA}")
    assert any('--index-url "$TORCH_INDEX_URL"' in a for name, a in steps if name == "RUN")


def test_the_image_and_the_trainer_share_the_base_and_the_app_layout():
    image, trainer = (instructions(path.read_text()) for path in DOCKERFILES.values())
    assert [a for n, a in image if n == "FROM"] == [a for n, a in trainer if n == "FROM"]
    assert ("WORKDIR", "/app") in image and ("WORKDIR", "/app") in trainer
    copied = {a for n, a in trainer if n == "COPY"}
    assert {"mlops_assets ./mlops_assets", "pipelines ./pipelines"} <= copied


BREAKAGES = {
    "floating base tag": (r"FROM python:[\w.-]+", "FROM python:3.11-slim", "not pinned"),
    "latest base": (r"FROM python:[\w.-]+", "FROM python:latest", "not pinned"),
    "root user": (r"USER mlops", "USER root", "runs as root"),
    "no user": (r"USER mlops\n", "", "runs as root"),
    "other torch": (r"torch==[\d.]+", "torch==2.12.0", "project's pin"),
    "no extra": (r'pip install "\.\[production\]"', "pip install .", "production extra"),
}


@pytest.mark.parametrize("name", DOCKERFILES)
@pytest.mark.parametrize("breakage", BREAKAGES, ids=str)
def test_a_broken_dockerfile_is_caught(name, breakage):
    pattern, replacement, message = BREAKAGES[breakage]
    text = DOCKERFILES[name].read_text()
    broken, count = re.subn(pattern, replacement, text)
    assert count, f"{breakage}: nothing to break in {name}"
    assert any(message in p for p in problems(broken, torch_pin())), breakage
