"""The MLflow pyfunc flavour of a ``PipelineModel``: what the registry stores and any MLflow tool can load.

``registry.MlflowRegistryClient`` logs and loads it; this module says what is stored. The stored model is portable:
its requirements are PyPI distributions at the versions that trained it, and the few modules of this package that
the pickled model imports travel with it as MLflow ``code_paths``. ``mlflow models serve`` with a virtualenv,
``mlflow models build-docker`` or a managed server rebuild an environment that loads it without this package, which
no package index has. Where this package is imported already (the endpoint, ``evaluation_report``, ``reproduce``),
its own modules are the ones used: a loaded package resolves its submodules from its own folder, not from the
model's code that MLflow puts on ``sys.path``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow.pyfunc
import pandas as pd

from mlops_assets.model.pipeline_model import PipelineModel

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec

log = logging.getLogger(__name__)

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
# What unpickling the model and predicting import from this package, relative to PACKAGE_ROOT: the wrapper, the
# model, its feature transformer and the expressions of derived columns with their grammar (the two ``__init__``
# import nothing else). A module these start importing must be listed here, or the model loads only where this
# package is installed (tests/unit/model/test_model_code.py and tests/integration/test_portable_model.py fail).
MODEL_CODE = (
    "__init__.py",
    "model/__init__.py",
    "model/pyfunc.py",
    "model/pipeline_model.py",
    "model/features.py",
    "model/expressions.py",
    "grammar.py",
)
TORCH_CODE = "model/torch_mlp.py"  # the estimator of a spec's ``model.torch``


class PipelineModelWrapper(mlflow.pyfunc.PythonModel):
    """Feature transformer and estimator in one artifact, so ``mlflow models serve`` computes the same
    features as training did."""

    def __init__(self, model: PipelineModel):
        self.model = model

    def predict(self, context, model_input: pd.DataFrame, params=None):
        frame = pd.DataFrame(model_input)
        return self.model.predict({c: frame[c].to_numpy() for c in frame.columns}).labels


def signature(spec: PipelineSpec):
    """The model's input schema from the spec, so MLflow checks requests without inferring anything."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    types = {"float": "double", "int": "long", "str": "string", "bool": "boolean"}
    inputs = Schema([ColSpec(types[spec.schema_.columns[c].dtype], c) for c in spec.input_columns])
    target_type = "double" if spec.task == "regression" else types[spec.schema_.columns[spec.target].dtype]
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec(target_type)]))


def requirements(spec: PipelineSpec) -> list[str]:
    """What an environment needs to load the model: PyPI distributions pinned to the versions that trained it.

    Given explicitly, as inferring them makes MLflow load the model in a subprocess. ``cloudpickle`` wrote the
    model; the estimator's own distribution is pinned too (scikit-learn, torch, or whatever installs a module of
    ``MLOPS_ALLOWED_ESTIMATOR_MODULES``). This package is not listed: its modules travel as the model's code.
    """
    from mlops_assets.model.provenance import package_version

    names = ["mlflow", "cloudpickle", "numpy", "pandas", "scikit-learn"]
    if spec.model.torch is not None:
        names.append("torch")
    elif not spec.model.estimator.startswith("sklearn."):  # the lookup reads every installed distribution's files
        names += estimator_distributions(spec.model.estimator)
    # torch reports e.g. ``2.13.0+cpu``: the local label ``+cpu`` names a build that only PyTorch's own index
    # serves, so the pin drops it. ``torch==2.13.0`` still matches such a build (PEP 440 ignores a candidate's
    # local label): an environment with the CPU wheel on its index installs that one.
    versions = {n: (package_version(n) or "").split("+")[0] for n in dict.fromkeys(names)}
    return [f"{name}=={version}" for name, version in versions.items() if version]


def estimator_distributions(import_path: str) -> list[str]:
    """The installed distributions that provide the estimator's top-level module: what unpickling it imports.
    Empty for a module that no distribution installs (a folder on ``sys.path``): such a model loads only beside it."""
    from importlib.metadata import packages_distributions

    module = import_path.split(".")[0]
    found = packages_distributions().get(module, [])
    if not found:
        log.warning(
            "the estimator module %r is installed by no distribution: an MLflow tool that builds the model's "
            "environment from its requirements cannot load the model",
            module,
        )
    return found


def model_code(spec: PipelineSpec, folder: Path) -> Path:
    """A copy of this package holding only what the model imports (MODEL_CODE, and TORCH_CODE for a torch model),
    in ``folder``: logged as the model's ``code_paths``, it is ``mlops_assets`` where the package is not installed."""
    root = folder / PACKAGE_ROOT.name
    for name in (*MODEL_CODE, *([TORCH_CODE] if spec.model.torch is not None else [])):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PACKAGE_ROOT / name, root / name)
    return root


INPUT_EXAMPLE_ROWS = 3  # rows of the training inputs stored with the model: what a request looks like


def log_pipeline_model(model: PipelineModel, spec: PipelineSpec, example: pd.DataFrame):
    """Log ``model`` as a pyfunc in the active run and register it under the pipeline's name: the one place
    that decides how a model is stored. ``example`` (training rows) is stored as its input example, checked
    against the signature."""
    _quiet_cloudpickle_notice()
    with tempfile.TemporaryDirectory() as folder:
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=PipelineModelWrapper(model),
            signature=signature(spec),
            input_example=example[spec.input_columns].head(INPUT_EXAMPLE_ROWS),
            pip_requirements=requirements(spec),
            code_paths=[str(model_code(spec, Path(folder)))],
            registered_model_name=spec.name,
        )


def _quiet_cloudpickle_notice() -> None:
    """MLflow logs a warning whenever a ``python_model`` object is pickled, recommending models from code.
    Ours is pickled on purpose (the fitted transformer and estimator are the model) and is only ever loaded
    from the project's own registry, so the notice is dropped in the processes that log models."""
    logger = logging.getLogger("mlflow.pyfunc")
    if not any(isinstance(f, _CloudpickleNotice) for f in logger.filters):
        logger.addFilter(_CloudpickleNotice())


class _CloudpickleNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Passing a Python object as `python_model`")
