"""The feature-store example's churn model served by a real endpoint on 127.0.0.1 that looks its view features up
(examples/feature_store, docs/features.md "Serving"): a request carries the customer and its region; the
endpoint adds the customer and usage views' features from their online tables, and logs them. The values it
uses are those the training's as-of join gives at the request's time; a missing customer is refused naming the
entity and the view; a stale one is refused or flagged per ``deployment.on_invalid``; after the view's asset
materializes a new snapshot, the endpoint serves the new value."""

import contextlib
import json
import shutil
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from mlops_assets.data.snapshot import read_source
from mlops_assets.feature_views.training import read_view_join
from mlops_assets.model.pipeline_model import fit_pipeline_model
from mlops_assets.naming import feature_view_key
from mlops_assets.resources.artifact_store import FsspecArtifactStore
from mlops_assets.serving.app import LoadedModel, create_app
from mlops_assets.serving.inference_log import InferenceLogWriter, log_schema
from mlops_assets.serving.row_checks import column_rules
from mlops_assets.serving.view_lookup import ViewLookup
from mlops_assets.spec import read_specs
from mlops_assets.spec.feature_view import load_feature_views
from tests.conftest import failures
from tests.integration.test_feature_store import EXAMPLE, materialize
from tests.integration.test_server import call, serving

VIEWS = ("customer", "usage")  # churn's
FEATURES = ["plan_price", "spend_90d", "sessions", "support_calls_30d"]


@pytest.fixture
def example(tmp_path: Path) -> Path:
    target = tmp_path / "feature_store"
    shutil.copytree(EXAMPLE, target)
    return target


def served_at(example: Path, store: FsspecArtifactStore) -> tuple[pd.Timestamp, pd.DataFrame]:
    """A time just after the newest row of the views, and every customer as the training's as-of join sees it then."""
    spec = spec_of(example)
    views = load_feature_views(example / "feature_views")
    join = read_view_join(store, spec.features.views, views)
    newest = [pd.to_datetime(j.snapshot[j.view.timestamp], utc=True).max() for j in join.views]
    now = max(newest) + pd.Timedelta(hours=1)  # as a real clock: no view row is from after it
    customers = sorted(set().union(*(j.snapshot["customer_id"].tolist() for j in join.views)))
    examples = pd.DataFrame({"customer_id": customers, "example_time": now.isoformat()})
    return now, join(examples)


def spec_of(example: Path):
    return next(spec for spec, _ in read_specs(example)[0] if spec.name == "churn")


@contextlib.contextmanager
def churn_endpoint(example: Path, store, log_dir: Path, now: pd.Timestamp, on_invalid: str = "reject"):
    spec = spec_of(example)
    joined = read_view_join(store, spec.features.views, load_feature_views(example / "feature_views"))
    training = joined(read_source(spec, example).frame)
    model = fit_pipeline_model(spec, training, HistGradientBoostingClassifier(max_iter=20))
    views = ViewLookup.for_spec(spec, load_feature_views(example / "feature_views"), store, clock=now.timestamp)
    views.refresh()
    dtypes = {**views.key_columns, **{c: spec.schema_.columns[c].dtype for c in spec.input_columns}}
    writer = InferenceLogWriter(log_dir, log_schema(dtypes, spec.task, spec.id_column), flush_seconds=0.05)
    app = create_app(
        spec.name,
        dtypes,
        lambda: LoadedModel("1", model),
        writer,
        admin_token="secret",
        id_column=spec.id_column,
        schema=column_rules(spec.schema_.columns),
        on_invalid=on_invalid,
        feature_views=views,
    )
    with serving(app) as port:
        yield port, views


def score(port: int, *rows: dict):
    status, _, body = call(port, "POST", "/invocations", json.dumps({"dataframe_records": list(rows)}).encode())
    return status, json.loads(body)


def logged(log_dir: Path, n: int) -> pd.DataFrame:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        files = sorted(log_dir.glob("*.parquet"))
        if files and sum(pq.read_metadata(f).num_rows for f in files) >= n:
            return pa.concat_tables([pq.read_table(f) for f in files]).to_pandas()
        time.sleep(0.05)
    raise AssertionError(f"{n} rows never reached {log_dir}")


@pytest.fixture
def views_materialized(example, layout):
    with dg.instance_for_test() as instance:
        result = materialize(example, layout, instance, *[feature_view_key(v) for v in VIEWS])
        assert result.success, failures(result)
        yield instance


def test_the_endpoint_serves_and_logs_the_values_the_training_join_gives(example, layout, views_materialized, tmp_path):
    store = FsspecArtifactStore(root=str(layout.data))
    now, expected = served_at(example, store)
    complete = expected.dropna(subset=FEATURES)
    assert len(complete) >= 3, len(complete)
    fresh = complete["customer_id"].tolist()[:3]
    with churn_endpoint(example, store, tmp_path / "log", now) as (port, views):
        rows = [{"example_id": f"r{c}", "customer_id": c, "region": "north"} for c in fresh]
        status, body = score(port, *rows)
        assert status == 200, body
        log = logged(tmp_path / "log", len(fresh)).set_index("customer_id").loc[fresh]
        want = complete.set_index("customer_id").loc[fresh, FEATURES]
        np.testing.assert_allclose(log[FEATURES].to_numpy(float), want.to_numpy(float))

        status, body = score(port, {"example_id": "x", "customer_id": 999_999, "region": "north"})
        assert status == 400
        assert "column 'customer_id': feature view 'customer': missing entity" in body["message"], body
        assert "999999" in body["message"]

        views.clock = (now + pd.Timedelta(days=22)).timestamp  # past usage's TTL (21 days), within customer's
        status, body = score(port, {"example_id": "y", "customer_id": fresh[0], "region": "north"})
        assert status == 400 and "feature view 'usage': stale entity" in body["message"], body
        assert "feature view 'customer'" not in body["message"]


def test_a_stale_entity_is_flagged_and_scored_without_its_values_under_flag(
    example, layout, views_materialized, tmp_path
):
    store = FsspecArtifactStore(root=str(layout.data))
    now, expected = served_at(example, store)
    customer = int(expected["customer_id"].iloc[0])
    later = now + pd.Timedelta(days=22)  # past usage's TTL (21 days)
    with churn_endpoint(example, store, tmp_path / "log", later, on_invalid="flag") as (port, _):
        status, body = score(port, {"example_id": "y", "customer_id": customer, "region": "north"})
        assert status == 200, body
        row = logged(tmp_path / "log", 1).iloc[0]
        assert "feature view 'usage': stale entity" in row["invalid"]
        assert np.isnan(row["sessions"]) and np.isnan(row["support_calls_30d"])  # never filled in


def test_after_a_new_snapshot_the_endpoint_serves_the_new_value(example, layout, views_materialized, tmp_path):
    store = FsspecArtifactStore(root=str(layout.data))
    now, expected = served_at(example, store)
    customer = int(expected.dropna(subset=FEATURES)["customer_id"].iloc[0])
    with churn_endpoint(example, store, tmp_path / "log", now) as (port, _):
        assert score(port, {"example_id": "a", "customer_id": customer, "region": "north"})[0] == 200
        profile = example / "feature_views" / "data" / "customer_profile.csv"
        frame = pd.read_csv(profile)
        newest = frame[frame["customer_id"] == customer].index[-1]
        frame.loc[newest, "plan_price"] = 1234.5
        frame.to_csv(profile, index=False)
        result = materialize(example, layout, views_materialized, feature_view_key("customer"))
        assert result.success, failures(result)
        status, _, body = call(port, "POST", "/admin/reload", b"", {"Authorization": "Bearer secret"})
        assert status == 200, body
        assert score(port, {"example_id": "b", "customer_id": customer, "region": "north"})[0] == 200
        log = logged(tmp_path / "log", 2).set_index("example_id")
        assert log.loc["a", "plan_price"] != 1234.5 and log.loc["b", "plan_price"] == 1234.5
