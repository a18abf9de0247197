"""``MLPipelineComponent``'s scaffolder through Dagster's own scaffolding function (what ``dg scaffold defs``
calls): a defs.yaml drafted from the data, or a refusal that leaves the defs folder as it was."""

import json
import re
from pathlib import Path

import click
import pytest
from dagster.components.component_scaffolding import scaffold_object
from pydantic import ValidationError

from mlops_assets.naming import COMPONENT_TYPE
from mlops_assets.spec import load_spec

WINE = Path(__file__).resolve().parents[3] / "pipelines" / "data" / "wine" / "wine.csv"


def scaffold(folder: Path, params: dict | None) -> None:
    scaffold_object(folder, COMPONENT_TYPE, json.dumps(params) if params else None, "yaml", folder.parent)


def test_a_scaffold_without_the_data_is_refused_before_anything_is_written(tmp_path):
    """What `dg scaffold defs mlops_assets.MLPipelineComponent churn` used to write, `attributes: {}`, is no
    spec: without a source there are no columns to declare."""
    with pytest.raises(ValidationError) as refused:
        scaffold(tmp_path / "churn", None)
    assert {e["loc"] for e in refused.value.errors() if e["type"] == "missing"} == {("source",), ("target",)}
    assert not (tmp_path / "churn").exists()


def test_the_scaffold_writes_the_spec_drafted_from_the_data_copied_beside_it(tmp_path):
    folder = tmp_path / "churn"
    scaffold(folder, {"source": str(WINE), "target": "cultivar"})
    spec = load_spec(folder / "defs.yaml")
    assert (spec.name, spec.task, spec.source.path) == ("churn", "multiclass", "data/wine.csv")
    assert (folder / "data" / "wine.csv").read_bytes() == WINE.read_bytes()
    text = (folder / "defs.yaml").read_text()
    assert text.startswith(f"# Drafted by `dg scaffold defs {COMPONENT_TYPE}` from data/wine.csv")
    assert f"\ntype: {COMPONENT_TYPE}\n\nattributes:\n  name: churn\n" in text


def test_a_refused_draft_leaves_the_defs_folder_as_it_was(tmp_path):
    with pytest.raises(click.ClickException, match=re.escape(f"{WINE}: --target 'colour' is not a column")):
        scaffold(tmp_path / "churn", {"source": str(WINE), "target": "colour"})
    assert list(tmp_path.iterdir()) == []
