"""Declarative ML lifecycle pipelines on Dagster software-defined assets."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mlops-assets")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
