"""``mlops-assets``, the command line: ``python -m mlops_assets.cli`` or the ``mlops-assets`` script."""

from mlops_assets.cli.commands import main

__all__ = ["main"]
