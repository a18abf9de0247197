"""The resources this code location runs on: the environment's (``MLOPS_ENV``), as the framework builds them.

The implementations are part of the installed package (``mlops_assets.resources``). This module is the project's
seam: to train on another scheduler or keep models in another registry, implement the contract
(``mlops_assets.contracts``) and return it in its field of ``Resources`` here.
"""

from mlops_assets.resources import resources_from_env

__all__ = ["resources_from_env"]
