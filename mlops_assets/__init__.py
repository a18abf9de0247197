"""Declarative ML lifecycle pipelines on Dagster software-defined assets."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mlops-assets")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

# ``type: mlops_assets.MLPipelineComponent`` (or ``PortfolioComponent``) in a defs.yaml names these attributes.
# They are loaded on first use: the training process and the endpoint import this package, and need not pay for
# importing Dagster.
_LAZY = {
    "MLPipelineComponent": "mlops_assets.definitions.component",
    "PortfolioComponent": "mlops_assets.definitions.component",
}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    # dg finds component types by listing the module's names: a lazy name must be listed too
    return [*globals(), *_LAZY]
