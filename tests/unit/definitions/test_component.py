"""``MLPipelineComponent``: a spec in a defs.yaml builds what the same spec file in ``pipelines/`` builds, and a
mistake in it names ``attributes.<field>`` and the line."""

import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster.components.core.component_tree import ComponentTree, ComponentTreeException
from dagster.components.testing import create_defs_folder_sandbox
from pydantic import ValidationError

from mlops_assets import MLPipelineComponent
from mlops_assets.definitions.folder import pipeline_definitions
from mlops_assets.sensors import build_sensors
from mlops_assets.spec import load_spec

REPO = Path(__file__).resolve().parents[3]
PIPELINES = REPO / "pipelines"


def component_folder(defs_folder: Path, spec_file: str, edit=None) -> Path:
    """A folder under ``defs/`` whose defs.yaml declares the bundled spec ``spec_file`` (edited by ``edit``),
    with the bundled data beside it, so the spec's relative paths resolve as they do in ``pipelines/``."""
    attributes = yaml.safe_load((PIPELINES / spec_file).read_text())
    if edit is not None:
        edit(attributes)
    folder = defs_folder / Path(spec_file).stem
    shutil.copytree(PIPELINES / "data", folder / "data")
    document = {"type": "mlops_assets.MLPipelineComponent", "attributes": attributes}
    (folder / "defs.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return folder


def shape(assets, sensors) -> dict:
    """What a user sees of a pipeline in Dagster: every asset with its lineage, group, code version and
    description; every check; every sensor."""
    specs = [s for a in assets for s in (a.specs if isinstance(a, dg.AssetsDefinition) else [a])]
    return {
        "assets": {
            s.key.to_user_string(): (
                sorted(d.asset_key.to_user_string() for d in s.deps),
                s.group_name,
                s.code_version,
                s.description,
            )
            for s in specs
        },
        "checks": sorted(str(k) for a in assets if isinstance(a, dg.AssetsDefinition) for k in a.check_keys),
        "sensors": sorted((s.name, s.description) for s in sensors),
    }


@pytest.mark.parametrize("spec_file", sorted(p.name for p in PIPELINES.glob("*.yaml")))
def test_a_component_builds_what_the_same_spec_file_builds(spec_file):
    spec_path = PIPELINES / spec_file
    expected = pipeline_definitions(load_spec(spec_path), spec_path, build_sensors)
    with create_defs_folder_sandbox() as sandbox:
        folder = component_folder(sandbox.defs_folder_path, spec_file)
        with sandbox.load_component_and_build_defs(defs_path=folder) as (component, defs):
            assert isinstance(component, MLPipelineComponent)
            assert component.spec == load_spec(spec_path)  # the one PipelineSpec model, and the same spec hash
            assert component.spec_path == folder / "defs.yaml"
            assert defs.resources == {} and defs.executor is None  # those are the project's, given once
            built = shape(defs.assets, defs.sensors)
    assert built == shape(expected.assets, expected.sensors)
    assert built["checks"] and built["sensors"]


@pytest.mark.parametrize(
    ("field", "edit", "message"),
    [
        # Dagster's own pass over the attributes (the spec's JSON types)
        ("monitoring.window", lambda raw: raw["monitoring"].update(window="many"), "valid integer"),
        # the component's pass, which resolves files against the defs.yaml's folder
        ("source.path", lambda raw: raw["source"].update(path="data/nope.csv"), "no file matches 'data/nope.csv'"),
        # the spec's cross-field checks
        ("target", lambda raw: raw.update(target="outcome"), "target 'outcome' is not a schema column"),
        (
            "features.derived.ratio",
            lambda raw: raw["features"]["derived"].update(ratio="ldl / cholesterol"),
            "['cholesterol'] are not feature columns",
        ),
    ],
)
def test_a_bad_attribute_names_the_field_and_the_line(field, edit, message):
    with create_defs_folder_sandbox() as sandbox:
        folder = component_folder(sandbox.defs_folder_path, "diabetes.yaml", edit)
        with pytest.raises(ComponentTreeException) as error, sandbox.load_component_and_build_defs(defs_path=folder):
            pass
    problem = str(error.value.__cause__)
    assert f"attributes.{field} at {folder / 'defs.yaml'}:" in problem
    assert message in problem


def test_paths_resolve_against_the_component_folder_not_the_working_directory(tmp_path, monkeypatch):
    folder = tmp_path / "defs" / "diabetes"
    shutil.copytree(PIPELINES / "data", folder / "data")
    monkeypatch.chdir(tmp_path)
    attributes = yaml.safe_load((PIPELINES / "diabetes.yaml").read_text())
    context = ComponentTree.for_test().load_context.for_path(folder)
    component = MLPipelineComponent.from_attributes_dict(attributes=attributes, context=context)
    assert component.spec_path == folder / "defs.yaml"
    shutil.rmtree(folder / "data")
    with pytest.raises(ValidationError, match=r"'data/diabetes/diabetes.csv' \(relative to .*defs/diabetes\)"):
        MLPipelineComponent.from_attributes_dict(attributes=attributes, context=context)


def test_the_component_is_exported_without_importing_dagster_until_used():
    probe = (
        "import sys, mlops_assets\n"
        "assert 'dagster' not in sys.modules, 'import mlops_assets imported dagster'\n"
        "assert 'MLPipelineComponent' in dir(mlops_assets)\n"  # how dg finds component types
        "import dagster\n"
        "assert issubclass(mlops_assets.MLPipelineComponent, dagster.Component)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
