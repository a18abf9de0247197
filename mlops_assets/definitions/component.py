"""A ``dg`` project's pipelines as Dagster Components.

``type: mlops_assets.MLPipelineComponent`` in a ``defs.yaml``, with one spec as its ``attributes``, builds what a
spec file in ``pipelines/`` builds (``folder.pipeline_definitions``): the assets, their checks and the sensors.
``type: mlops_assets.PortfolioComponent`` builds the ``portfolio`` over every pipeline component of the project,
as ``build_definitions`` adds it over a folder of specs. Resources and the executor are the project's, given once
in its ``definitions.py``: Dagster refuses to merge two components' resources under one key even when they are
equal.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import click
import dagster as dg
from pydantic import BaseModel, Field

from mlops_assets.assets.portfolio import build_portfolio
from mlops_assets.dagster_internals import enrich_validation_errors_with_source_position
from mlops_assets.data.draft import TaskChoice, draft_file
from mlops_assets.definitions.folder import pipeline_definitions
from mlops_assets.definitions.known_warnings import silence_known_warnings
from mlops_assets.errors import MlopsError
from mlops_assets.naming import COMPONENT_TYPE
from mlops_assets.sensors.portfolio import build_portfolio_automation
from mlops_assets.spec import PipelineSpec
from mlops_assets.spec.data_roots import outside_roots

DEFS_FILE = "defs.yaml"
DATA_FOLDER = "data"  # in a component's folder: where the scaffolder copies a source that lies outside it


class PipelineScaffoldParams(BaseModel):
    """What ``dg scaffold defs mlops_assets.MLPipelineComponent NAME`` drafts the spec from, as ``mlops-assets
    init`` does; NAME, the folder under defs/, names the pipeline. A spec lists its columns and reads an existing
    file, so there is no draft without the data: dg refuses a scaffold without ``--source`` and ``--target``."""

    source: str = Field(
        description="CSV or parquet file to train on, relative to where dg runs; copied into the component's data/ "
        "folder when it lies outside the folders a spec may read (its own, MLOPS_DATA_ROOTS)"
    )
    target: str = Field(description="Column to predict.")
    id: str | None = Field(default=None, description="Column naming each row: unique, never a feature.")
    task: TaskChoice | None = Field(default=None, description="Default: inferred from the target.")


class PipelineScaffolder(dg.Scaffolder[PipelineScaffoldParams]):
    """Writes a defs.yaml whose attributes are the spec drafted from the data (``data.draft``), checked by the
    spec's models before it is written, so ``dg check defs`` accepts it as written."""

    @classmethod
    def get_scaffold_params(cls) -> type[PipelineScaffoldParams]:
        return PipelineScaffoldParams

    def scaffold(self, request: dg.ScaffoldRequest[PipelineScaffoldParams]) -> None:
        """A refusal is a ``click`` error: dg runs the scaffolder inside its command and prints it as one."""
        if request.scaffold_format != "yaml":
            raise click.UsageError("a pipeline is declared in YAML: leave out --format python")
        folder, params = request.target_path, request.params
        data = Path(params.source)
        outside = data.is_file() and outside_roots(data, folder) is not None
        try:
            draft = draft_file(
                data,
                folder / DEFS_FILE,
                name=folder.name,
                target=params.target,
                id_column=params.id,
                task=params.task,
                copy_into=DATA_FOLDER if outside else None,
                tool=f"dg scaffold defs {COMPONENT_TYPE}",
            )
        except MlopsError as exc:
            for made in (folder / DATA_FOLDER, folder):  # dg made the folder for this scaffold: leave it as it was
                if made.is_dir() and not any(made.iterdir()):
                    made.rmdir()
            raise click.ClickException(str(exc)) from None
        (folder / DEFS_FILE).write_text(f"{draft.heading()}type: {COMPONENT_TYPE}\n\nattributes:\n{draft.to_yaml(2)}")
        copied = f"; copied {data} into {DATA_FOLDER}/" if outside else ""
        click.echo(f"Drafted {draft.summary}{copied}. Read its comments, then: dg check defs")


@dg.scaffold_with(PipelineScaffolder)
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
        silence_known_warnings()
        built = pipeline_definitions(self.spec, self.spec_path)
        return dg.Definitions(assets=built.assets, asset_checks=built.checks, sensors=built.sensors)


@dataclass(frozen=True)
class PortfolioComponent(dg.Component):
    """The ``portfolio`` asset, its sensor and its schedule over every ``MLPipelineComponent`` of the project's
    defs folder: one report for the code location, as a folder of specs gets. It takes no attributes."""

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        specs = pipeline_specs(context.defs_module_path)
        if not specs:
            return dg.Definitions()
        sensor, schedule = build_portfolio_automation(specs)
        return dg.Definitions(assets=[build_portfolio(specs)], sensors=[sensor], schedules=[schedule])


def pipeline_specs(defs_folder: Path) -> list[PipelineSpec]:
    """The specs of the pipeline components under ``defs_folder``, each validated against its own folder. A
    broken one is left out here: its own component reports it, naming the field and the line."""
    import yaml

    specs = []
    for path in sorted(defs_folder.rglob(DEFS_FILE)):
        document = yaml.safe_load(path.read_text()) or {}
        if not isinstance(document, dict) or document.get("type") != COMPONENT_TYPE:
            continue
        try:
            specs.append(
                PipelineSpec.model_validate(document.get("attributes") or {}, context={"base_dir": path.parent})
            )
        except ValueError:
            continue
    return specs
