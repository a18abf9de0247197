"""Warnings about features the project uses on purpose, silenced in its own processes only, each with why.

The code location installs them (``build_definitions`` and the Component), so they apply where the assets
run: the Dagster CLI, the webserver's and daemon's code servers, and ``dg``. A warning the project causes by
mistake is fixed at its cause instead, never listed here.
"""

from __future__ import annotations

import warnings

import dagster as dg


def silence_known_warnings() -> None:
    # Data versions by content hash are how an unchanged source or feedback starts no work downstream
    # (raw_data, validated_features, feedback); Dagster marks that parameter beta.
    warnings.filterwarnings("ignore", r"Parameter `data_version` of initializer `Output.__init__`", dg.BetaWarning)
    # Passed by Dagster's own asset-selection parser for a selection such as '*' on the command line.
    warnings.filterwarnings("ignore", r"Parameter `include_sources` of function `AssetSelection.all`", dg.BetaWarning)
    # Read by Dagster's own Pipes subprocess client, which runs the trainer; nothing of ours calls it.
    warnings.filterwarnings("ignore", r"Function `PipesMessageReader.expected_writer_count`", dg.PreviewWarning)
