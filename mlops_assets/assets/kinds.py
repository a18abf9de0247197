"""The technology badges the Dagster UI shows on each asset (``kinds=``), under the names its icon list knows.

The UI finds an icon by the kind lowercased, without spaces, dots, dashes or underscores (``scikit-learn`` is
its ``scikitlearn``); a kind it does not know still shows, as text.

Where the training or the endpoint runs (Kubernetes or a local process) is not a badge: it is the ``trainer``
and ``deployer`` resources, bound after the assets are built (``build_definitions`` takes them apart from
the specs, and a test binds local ones under any environment), so the assets cannot know it.
"""

from __future__ import annotations

from enum import StrEnum

from mlops_assets.spec import PipelineSpec


class Kind(StrEnum):
    scikit_learn = "scikit-learn"
    pytorch = "pytorch"
    mlflow = "mlflow"
    pandera = "pandera"
    pandas = "pandas"
    parquet = "parquet"
    csv = "csv"
    scipy = "scipy"
    matplotlib = "matplotlib"
    python = "python"


def model_kind(spec: PipelineSpec) -> str:
    """What trains the spec's model: pytorch for ``model.torch``, else the estimator's package (scikit-learn
    for ``sklearn.*``; another allowed package, such as xgboost, by its own name)."""
    if spec.model.torch is not None:
        return Kind.pytorch
    assert spec.model.estimator is not None  # the spec sets exactly one of estimator and torch
    package = spec.model.estimator.split(".", 1)[0]
    return Kind.scikit_learn if package == "sklearn" else package


def file_kinds(path: str) -> set[str]:
    """The format of files named by ``path`` (a file or a glob), where its suffix names one."""
    suffix = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return {Kind(suffix)} if suffix in (Kind.csv, Kind.parquet) else set()
