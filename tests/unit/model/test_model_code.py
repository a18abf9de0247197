"""The modules logged with a model as its ``code_paths`` are all that unpickling it imports from this package, and
its requirements are PyPI distributions pinned to the versions installed here."""

import json
import subprocess
import sys

from mlops_assets.model.provenance import package_version
from mlops_assets.model.pyfunc import MODEL_CODE, TORCH_CODE, model_code, requirements
from mlops_assets.spec import load_spec
from tests.conftest import REPO

# Imports the wrapper and the torch estimator from the copy alone, in a process that imported nothing of this
# package before; prints every module of the package it then holds, and the file each came from.
IMPORT_FROM_COPY = """
import json, sys
sys.path.insert(0, sys.argv[1])
import mlops_assets.model.pyfunc, mlops_assets.model.torch_mlp
print(json.dumps({n: m.__file__ for n, m in sys.modules.items() if n.split(".")[0] == "mlops_assets"}))
"""


def test_the_copied_modules_are_everything_the_model_imports_from_this_package(tmp_path):
    copy = model_code(load_spec(REPO / "pipelines" / "wine.yaml"), tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_FROM_COPY, str(tmp_path)], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr  # a module the copy lacks fails the import
    imported = json.loads(done.stdout)
    assert all(file.startswith(str(copy)) for file in imported.values())
    assert set(imported.values()) == {str(copy / name) for name in (*MODEL_CODE, TORCH_CODE)}  # nothing more


def test_a_scikit_learn_model_pins_what_trained_it_and_copies_no_torch_estimator(tmp_path):
    spec = load_spec(REPO / "pipelines" / "breast_cancer.yaml")
    names = ["mlflow", "cloudpickle", "numpy", "pandas", "scikit-learn"]
    assert requirements(spec) == [f"{name}=={package_version(name)}" for name in names]  # and not this package
    copy = model_code(spec, tmp_path)
    assert {path.relative_to(copy).as_posix() for path in copy.rglob("*.py")} == set(MODEL_CODE)


def test_a_torch_model_pins_torch_without_its_local_build_label():
    pins = requirements(load_spec(REPO / "pipelines" / "wine.yaml"))
    assert f"torch=={package_version('torch').split('+')[0]}" in pins and all("+" not in pin for pin in pins)


def test_an_estimator_of_another_allowed_module_pins_the_distribution_that_installs_it(tmp_path, monkeypatch, caplog):
    """What ``MLOPS_ALLOWED_ESTIMATOR_MODULES`` lets a spec name (xgboost, a house package): unpickling the
    estimator imports its module, so the environment needs the distribution; a bare folder has none to pin."""
    (tmp_path / "house_models").mkdir()
    (tmp_path / "house_models" / "__init__.py").write_text("class Model:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = load_spec(REPO / "pipelines" / "breast_cancer.yaml")
    spec = spec.model_copy(update={"model": spec.model.model_copy(update={"estimator": "house_models.Model"})})
    bare = requirements(spec)
    assert not any(pin.startswith("house") for pin in bare) and "installed by no distribution" in caplog.text

    info = tmp_path / "house_models-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: house-models\nVersion: 1.2.3+local\n")
    (info / "top_level.txt").write_text("house_models\n")
    assert requirements(spec) == [*bare, "house-models==1.2.3"]
