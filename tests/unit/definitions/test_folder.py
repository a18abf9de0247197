"""A folder of specs as one Definitions: a broken spec becomes a placeholder asset, the others still load."""

import dagster as dg

from mlops_assets.assets import build_pipeline_assets
from mlops_assets.definitions import folder
from mlops_assets.definitions.folder import SPEC_ERROR_ASSET, build_definitions, spec_error_assets
from mlops_assets.errors import SpecError


def test_materializing_a_broken_spec_placeholder_fails_with_its_problems(tmp_path):
    errors = [SpecError(str(tmp_path / name), [f"task: wrong in {name}"]) for name in ("my-spec.yaml", "my_spec.yaml")]
    assets = spec_error_assets(errors)
    assert [a.key.path for a in assets] == [["my_spec", SPEC_ERROR_ASSET], ["my_spec_", SPEC_ERROR_ASSET]]
    with dg.instance_for_test() as instance:
        result = dg.materialize(assets[:1], instance=instance, raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node(f"my_spec__{SPEC_ERROR_ASSET}").error.message
    assert "my-spec.yaml" in failure and "task: wrong in my-spec.yaml" in failure


def test_a_spec_whose_assets_cannot_be_built_does_not_take_the_others_down(pipelines, monkeypatch):
    def build(spec, path):
        if spec.name == "diabetes":
            raise RuntimeError("boom")
        return build_pipeline_assets(spec, path)

    monkeypatch.setattr(folder, "build_pipeline_assets", build)
    assets = {"/".join(a.key.path): a for a in build_definitions(pipelines).assets}
    assert "breast_cancer/trained_model" in assets and "wine/trained_model" in assets
    assert [k for k in assets if k.startswith("diabetes/")] == [f"diabetes/{SPEC_ERROR_ASSET}"]
    assert "RuntimeError: boom" in next(iter(assets[f"diabetes/{SPEC_ERROR_ASSET}"].descriptions_by_key.values()))


def test_each_asset_names_its_upstream_assets_by_their_full_keys(pipelines):
    """Inputs named by key, not left for Dagster to resolve by parameter name: resolving rebuilds each such
    asset definition when the location loads, and the unprefixed names are shared by every pipeline."""
    for asset in build_definitions(pipelines).assets:
        if isinstance(asset, dg.AssetsDefinition) and asset.is_executable:
            pipeline = asset.key.path[0]
            assert all(key.path[0] == pipeline and len(key.path) == 2 for key in asset.keys_by_input_name.values())
