"""The code location: each pipeline declared under ``defs/``, on the resources of the environment (``MLOPS_ENV``).

Components bring assets, checks and sensors; the resources and the executor are given once, here (as the
repository's own ``definitions.py`` gives them to the pipelines of ``pipelines/``).
"""

from pathlib import Path

import dagster as dg

from mlops_assets.resources import resources_from_env


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(resources=resources_from_env().by_key(), executor=dg.in_process_executor),
    )
