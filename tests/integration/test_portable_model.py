"""A registered model loads and predicts where this package is not installed: in a fresh virtualenv holding exactly
the model's own requirements.txt, as ``mlflow models serve --env-manager virtualenv``, ``mlflow models build-docker``
or a managed server builds one, and loads the model's downloaded folder. ``mlops_assets`` there comes only from
the model's code."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from mlops_assets.model.registry import MlflowRegistryClient
from tests.conftest import REPO
from tests.in_process_training import train_and_register

pytestmark = pytest.mark.integration

UV = Path(sys.executable).with_name("uv")  # the project's virtualenv has uv
HOLDOUT_ROWS = 20

# Run by the fresh virtualenv's interpreter from a folder holding nothing else: whether the package is importable
# before the model loads, where it came from after, and the model's predictions.
SCORE = """
import importlib.util, json, sys
import mlflow.pyfunc, pandas as pd
before = importlib.util.find_spec("mlops_assets") is not None
predictions = mlflow.pyfunc.load_model(sys.argv[1]).predict(pd.read_parquet(sys.argv[2]))
import mlops_assets
print(json.dumps({"importable_before": before, "package": mlops_assets.__file__, "predictions": list(predictions)}))
"""


def install(venv: Path, requirements: Path) -> Path:
    """``requirements`` installed by uv into the virtualenv at ``venv`` (created when absent); its interpreter.
    pip's local wheels (``PIP_FIND_LINKS``, where a machine without a GPU keeps the CPU build of torch) are
    offered to uv too."""
    if not venv.exists():
        subprocess.run([UV, "venv", "-q", "--python", sys.executable, venv], check=True, timeout=60)
    python = venv / "bin" / "python"
    links = [arg for path in os.environ.get("PIP_FIND_LINKS", "").split() for arg in ("--find-links", path)]
    subprocess.run(
        [UV, "pip", "install", "-q", "--python", python, "-r", requirements, *links], check=True, timeout=300
    )
    return python


def score(python: Path, model_folder: Path, rows: pd.DataFrame, work: Path) -> dict:
    """What ``SCORE`` reports of the model at ``model_folder`` on ``rows``, run by ``python`` in ``work``, with no
    environment of this process (no ``PYTHONPATH``). Compiled modules go to ``work``: the model's folder stays as
    the registry stored it, and a second run reuses them."""
    work.mkdir(exist_ok=True)
    (work / "score.py").write_text(SCORE)
    rows.to_parquet(work / "rows.parquet", index=False)
    env = {"PATH": os.environ["PATH"], "HOME": str(work), "PYTHONPYCACHEPREFIX": str(work / "pycache")}
    command = [python, "score.py", model_folder, "rows.parquet"]
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture
def registry(tmp_path) -> MlflowRegistryClient:
    return MlflowRegistryClient(f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "artifacts"))


def quick_to_train(path: Path) -> Path:
    """The spec at ``path`` with its torch model trained for two epochs: what the weights are does not matter
    here, only that the stored model gives the same answers everywhere."""
    raw = yaml.safe_load(path.read_text())
    if "torch" in raw["model"]:
        raw["model"]["torch"]["epochs"] = 2
        path.write_text(yaml.safe_dump(raw))
    return path


def test_registered_models_load_and_predict_in_a_virtualenv_of_their_requirements_without_this_package(
    registry, pipelines, tmp_path
):
    """A scikit-learn model (breast_cancer's LogisticRegression) in a virtualenv of exactly its requirements, then
    a torch model (wine's MLP), whose requirements are those and torch, once they are installed there too: one
    virtualenv, so the second model does not pay again for compiling MLflow's modules."""
    installed: set[str] = set()
    for pipeline in ("breast_cancer", "wine"):
        registered = train_and_register(registry, quick_to_train(pipelines / f"{pipeline}.yaml"))
        version = registered.version.version
        rows = registered.holdout[registered.spec.input_columns].head(HOLDOUT_ROWS)
        expected = registry.load(pipeline, version).predict(rows).labels.tolist()  # the project's own loading path
        client = MlflowClient(tracking_uri=registry.uri, registry_uri=registry.uri)
        model_folder = Path(client.get_model_version_download_uri(pipeline, version))
        pins = set((model_folder / "requirements.txt").read_text().split())
        assert all("==" in pin and "+" not in pin for pin in pins) and not any("mlops" in pin for pin in pins)
        assert ("torch" in {pin.split("==")[0] for pin in pins}) == (registered.spec.model.torch is not None)
        assert installed <= pins  # the virtualenv holds nothing this model did not ask for
        installed = pins

        scored = score(
            install(tmp_path / "venv", model_folder / "requirements.txt"), model_folder, rows, tmp_path / "scoring"
        )

        assert not scored["importable_before"], pipeline
        package = Path(scored["package"])
        assert package.parent.parent == model_folder / "code" and REPO not in package.parents  # its code_paths
        assert scored["predictions"] == expected, pipeline
