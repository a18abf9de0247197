"""The pipeline spec: its models (one module per group of sections) and how spec files are read.

The package's names are the spec's public API: ``PipelineSpec``, ``load_spec``, ``read_specs``, ``load_specs``.
"""

from mlops_assets.spec.loading import load_spec, load_specs, read_specs
from mlops_assets.spec.pipeline import PipelineSpec

__all__ = ["PipelineSpec", "load_spec", "load_specs", "read_specs"]
