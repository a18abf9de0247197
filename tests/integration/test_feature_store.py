"""The bundled feature-store example (examples/feature_store): churn and upsell share the customer view and each
has one of its own. Every view is an asset upstream of the models that use it; each training set is the as-of
join of the spec's examples with the views' snapshots, equal to the brute-force oracle for every example; the
model versions record the snapshots they joined, ``reproduce`` rebuilds the join from them, and a view change
requests the training sets of the specs that use it and nothing else."""

import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from mlops_assets.definitions.folder import build_definitions
from mlops_assets.governance.reproduce import reproduce
from mlops_assets.model.registry import MlflowRegistryClient
from mlops_assets.naming import FEATURE_VIEW_TAG, ViewPrefix, asset_keys, feature_view_key, view_store_key
from mlops_assets.resources import local_resources
from mlops_assets.resources.artifact_store import FsspecArtifactStore
from mlops_assets.spec import read_specs
from mlops_assets.spec.feature_view import entity_column, load_feature_views, referenced_features, time_column
from tests.conftest import QUIET, REPO, failures
from tests.unit.feature_views.oracle import seen_row

EXAMPLE = REPO / "examples" / "feature_store"
VIEWS = {"customer": ["churn", "upsell"], "usage": ["churn"], "engagement": ["upsell"]}
MODELS = ("churn", "upsell")


@pytest.fixture
def example(tmp_path: Path) -> Path:
    target = tmp_path / "feature_store"
    shutil.copytree(EXAMPLE, target)
    return target


def materialize(folder: Path, layout, instance, *keys: dg.AssetKey):
    defs = build_definitions(folder, local_resources(layout), sensor_factory=None)
    assets = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]
    return dg.materialize(
        assets,
        selection=list(keys),
        resources=local_resources(layout).by_key(),
        instance=instance,
        raise_on_error=False,
        run_config=QUIET,
    )


def view_keys() -> list[dg.AssetKey]:
    return [feature_view_key(view) for view in VIEWS]


def training_keys(*names: str) -> list[dg.AssetKey]:
    return [asset_keys(model)[name] for model in MODELS for name in names]


def test_each_view_is_an_asset_upstream_of_every_model_that_uses_it(example, layout):
    graph = build_definitions(example, local_resources(layout), sensor_factory=None).resolve_asset_graph()
    for view, models in VIEWS.items():
        children = {key for key in graph.get_all_asset_keys() if feature_view_key(view) in graph.get(key).parent_keys}
        assert children == {asset_keys(model)["validated_features"] for model in models}
        for model in models:
            upstream = graph.upstream_key_iterator(asset_keys(model)["trained_model"])
            assert feature_view_key(view) in set(upstream)


def test_the_training_sets_are_the_as_of_join_and_the_versions_record_the_snapshots(example, layout):
    with dg.instance_for_test() as instance:
        result = materialize(example, layout, instance, *view_keys(), *training_keys("raw_data", "validated_features"))
        assert result.success, failures(result)
        result = materialize(example, layout, instance, *training_keys("trained_model"))
        assert result.success, failures(result)
    store = FsspecArtifactStore(root=str(layout.data))
    client = MlflowRegistryClient(layout.tracking_uri)
    views = load_feature_views(example / "feature_views")
    specs = {spec.name: spec for spec, _ in read_specs(example)[0]}
    for model in MODELS:
        spec, tags = specs[model], client.get(model, "1").tags
        hashes = {k.removeprefix(FEATURE_VIEW_TAG): v for k, v in tags.items() if k.startswith(FEATURE_VIEW_TAG)}
        assert set(hashes) == {view for view, users in VIEWS.items() if model in users}
        train_key = tags["training_set"]
        rows = pd.concat(
            [
                store.read_table(train_key).to_pandas(),
                store.read_table(train_key.replace("train", "holdout")).to_pandas(),
            ]
        )
        assert len(rows) > 400
        for reference in spec.features.views:
            view = views[reference.view]
            snapshot = store.read_table(view_store_key(view.name, ViewPrefix.offline, f"{hashes[view.name]}.parquet"))
            assert_joined_as_of(rows, snapshot.to_pandas(), view, reference)
    reproduction = reproduce("churn", "1", store, client)
    assert any(line.startswith("as-of join rebuilt") for line in reproduction.checked), reproduction.checked


def assert_joined_as_of(rows: pd.DataFrame, snapshot: pd.DataFrame, view, reference) -> None:
    """Every example's view features are those of the oracle's row: the newest of its customer at or before its
    time within the TTL, missing where there is none; the example has rows on both sides of that rule."""
    keys = snapshot[view.entity].to_numpy()
    times = pd.to_datetime(snapshot[view.timestamp], utc=True)
    missing = later = 0
    for _, example in rows.iterrows():
        time = pd.Timestamp(example[time_column(reference, view)], tz="UTC")
        key = example[entity_column(reference, view)]
        position = seen_row(snapshot, view.entity, view.timestamp, key, time, view.ttl)
        for feature in referenced_features(reference, view):
            expected = np.nan if position < 0 else float(snapshot[feature].iloc[position])
            assert np.isclose(float(example[feature]), expected, equal_nan=True), (view.name, feature, dict(example))
        missing += position < 0
        later += bool(((keys == key) & (times > time).to_numpy()).any())  # a newer value existed: not seen
    assert 0 < missing < len(rows) and later > len(rows) / 4, (view.name, missing, later)


def test_a_view_change_requests_the_training_sets_of_its_specs_and_nothing_else(example, layout):
    with dg.instance_for_test() as instance:
        result = materialize(example, layout, instance, *view_keys(), *training_keys("raw_data", "validated_features"))
        assert result.success, failures(result)
        defs = build_definitions(example, local_resources(layout), sensor_factory=None)
        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert tick.total_requested == 0  # everything is up to date
        for view, users in (("customer", MODELS), ("usage", ("churn",))):
            assert materialize(example, layout, instance, feature_view_key(view)).success
            tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
            requested = {key for key in defs.resolve_asset_graph().get_all_asset_keys() if tick.get_num_requested(key)}
            assert requested == {asset_keys(model)["validated_features"] for model in users}, view


def test_a_spec_naming_an_unknown_view_or_feature_fails_naming_the_field_and_the_file(example):
    churn = example / "churn.yaml"
    churn.write_text(churn.read_text().replace("view: usage", "view: usage_v2").replace("spend_90d]", "spend_9d]"))
    specs, problems = read_specs(example)
    assert [spec.name for spec, _ in specs] == ["upsell"]
    message = str(problems[0])
    assert "churn.yaml" in message
    assert "features.views.1.view: unknown view 'usage_v2'" in message
    assert "features.views.0.features: ['spend_9d'] are not features of view 'customer'" in message
