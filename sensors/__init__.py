"""The sensors every pipeline of this code location gets: the framework's loop (``mlops_assets.sensors``).

The implementations are part of the installed package. This module is the project's seam: a factory with the same
signature that adds sensors of its own (one watching an upstream system, say) to the framework's list.
"""

from mlops_assets.sensors import build_sensors

__all__ = ["build_sensors"]
