"""One pipeline spec as a Dagster Component: ``type: mlops_assets.MLPipelineComponent`` in a ``dg`` project's
``defs.yaml``, with the spec as its ``attributes``.

It builds what a spec file in ``pipelines/`` builds (``folder.pipeline_definitions``): the assets, their
checks and the sensors. Resources and the executor are the project's, given once in its ``definitions.py``:
Dagster refuses to merge two components' resources under one key even when they are equal.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._utils.pydantic_yaml import enrich_validation_errors_with_source_position
from pydantic import BaseModel

from mlops_assets.definitions.folder import pipeline_definitions
from mlops_assets.definitions.known_warnings import silence_known_warnings
from mlops_assets.spec import PipelineSpec

DEFS_FILE = "defs.yaml"


@dataclass(frozen=True)
class MLPipelineComponent(dg.Component):
    """An ML pipeline declared by a pipeline spec: raw data to a served, monitored endpoint, its checks and
    its sensors. Relative paths in the spec resolve against the folder of its defs.yaml."""

    spec: PipelineSpec
    spec_path: Path  # the defs.yaml that declares it: provenance, and the folder paths resolve against

    @classmethod
    def get_model_cls(cls) -> type[BaseModel]:
        return PipelineSpec

    @classmethod
    def load(cls, attributes: BaseModel | None, context: dg.ComponentLoadContext) -> MLPipelineComponent:
        """The spec validated again, now against the defs.yaml's folder: Dagster's own pass has no context,
        so the files the spec names could not be checked there. A problem names ``attributes.<field>``
        and the line of defs.yaml, as Dagster's pass does."""
        tree = context.resolution_context.source_position_tree  # None when built from a dict in a test
        spec_path = Path(tree.position.filename) if tree else context.path / DEFS_FILE
        attributes_tree = tree.children.get("attributes") if tree else None
        located = (
            enrich_validation_errors_with_source_position(attributes_tree, ["attributes"])
            if attributes_tree
            else nullcontext()
        )
        raw = attributes.model_dump(by_alias=True, exclude_unset=True) if attributes is not None else {}
        with located:
            spec = PipelineSpec.model_validate(raw, context={"base_dir": spec_path.parent})
        return cls(spec=spec, spec_path=spec_path)

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        # imported here, as the CLI does: the framework's modules do not import the sensors package, and
        # only building a component needs it
        from sensors import build_sensors

        silence_known_warnings()
        built = pipeline_definitions(self.spec, self.spec_path, build_sensors)
        return dg.Definitions(assets=built.assets, sensors=built.sensors)
