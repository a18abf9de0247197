"""The feature-view lookup at serving without a socket: a request's entity keys get the view's features from its
online table; a missing or stale entity is a violation of the key column naming the view, its features null,
never filled; a new online table is served from the next request on; the pointer is re-read from the store."""

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlops_assets.errors import PayloadError
from mlops_assets.naming import ViewPrefix, view_store_key
from mlops_assets.resources.artifact_store import FsspecArtifactStore
from mlops_assets.serving.row_checks import SchemaRejection
from mlops_assets.serving.view_lookup import ServedView, ViewLookup

DAY = 86400.0
NOW = pd.Timestamp("2025-06-01T00:00:00", tz="UTC").timestamp()
VIEW = ServedView("customer", "customer_id", "customer_id", "updated_at", ("plan_price", "spend_90d"), 30 * DAY)


def table(**overrides) -> pd.DataFrame:
    """Three customers: 1 fresh (two rows, the newest wins), 2 stale (40 days old), 3 fresh with a null."""
    frame = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 3],
            "updated_at": pd.to_datetime(
                ["2025-04-01T00:00", "2025-05-20T00:00", "2025-04-22T00:00", "2025-05-31T12:00"], utc=True
            ),
            "plan_price": [9.0, 19.0, 29.0, 39.0],
            "spend_90d": [1.0, 2.0, 3.0, float("nan")],
        }
    )
    return frame.assign(**overrides)


@pytest.fixture
def lookup() -> ViewLookup:
    views = ViewLookup([VIEW], clock=lambda: NOW)
    views.load("customer", table(), "hash1")
    return views


def test_fresh_entities_get_their_newest_values(lookup):
    columns = {"customer_id": [1, 3], "region": ["north", "south"]}
    assert lookup.add(columns) == []
    assert columns["plan_price"] == [19.0, 39.0]
    assert columns["spend_90d"] == [2.0, None]  # a missing value stays missing: the schema says if it may be


def test_keys_sent_as_text_or_whole_floats_find_integer_entities(lookup):
    columns = {"customer_id": ["1", 1.0]}
    assert lookup.add(columns) == []
    assert columns["plan_price"] == [19.0, 19.0]


def test_a_missing_entity_is_a_violation_naming_the_view_and_gets_no_value(lookup):
    columns = {"customer_id": [1, 999, None]}
    problems = lookup.add(columns)
    assert [(p.row, p.column, p.value) for p in problems] == [(1, "customer_id", 999), (2, "customer_id", None)]
    assert "feature view 'customer': missing entity" in str(problems[0])
    assert columns["plan_price"] == [19.0, None, None]


def test_a_value_older_than_the_ttl_or_from_the_future_is_stale(lookup):
    columns = {"customer_id": [2, 1]}
    problems = lookup.add(columns)
    assert [p.row for p in problems] == [0]
    assert "feature view 'customer': stale entity" in str(problems[0]) and "2025-04-22" in str(problems[0])
    assert columns["plan_price"] == [None, 19.0]
    # at a time before customer 1's newest row, that row is from the future: the as-of join would not see it
    assert [p.row for p in lookup.add({"customer_id": [1]}, now=NOW - 20 * DAY)] == [0]


def test_a_request_without_the_key_or_with_the_features_itself_is_refused(lookup):
    with pytest.raises(SchemaRejection, match="'customer_id': the entity key of feature view 'customer'"):
        lookup.add({"region": ["north"]})
    with pytest.raises(PayloadError, match=r"carries \['plan_price'\], features of view 'customer'"):
        lookup.add({"customer_id": [1], "plan_price": [5.0]})


def test_a_new_table_is_served_from_the_next_request(lookup):
    lookup.load("customer", table(plan_price=[0.0, 100.0, 0.0, 0.0]), "hash2")
    columns = {"customer_id": [1]}
    lookup.add(columns)
    assert columns["plan_price"] == [100.0]


def test_refresh_follows_the_pointer_and_reloads_only_a_changed_table(tmp_path):
    store = FsspecArtifactStore(root=str(tmp_path))
    lookup = ViewLookup([VIEW], store, clock=lambda: NOW)
    assert lookup.refresh() == []  # no pointer yet: nothing served, every entity missing
    assert "no online table loaded yet" in str(lookup.add({"customer_id": [1]})[0])

    def publish(digest: str, frame: pd.DataFrame) -> None:
        key = view_store_key("customer", ViewPrefix.online, f"{digest}.parquet")
        store.write_table(key, pa.Table.from_pandas(frame, preserve_index=False))
        pointer = {"content_hash": digest, "online_table": key}
        store.write_bytes(view_store_key("customer", ViewPrefix.online, "current.json"), json.dumps(pointer).encode())

    publish("a" * 64, table())
    assert lookup.refresh() == ["customer"]
    assert lookup.refresh() == []  # the same pointer: nothing read but it
    publish("b" * 64, table(plan_price=[0.0, 7.5, 0.0, 0.0]))
    assert lookup.refresh() == ["customer"]
    columns = {"customer_id": [1]}
    assert lookup.add(columns) == [] and columns["plan_price"] == [7.5]


def test_ttl_is_the_views(lookup):
    assert VIEW.ttl_s == timedelta(days=30).total_seconds()


def test_the_request_logic_scores_with_looked_up_values_and_rejects_or_flags_a_missing_entity():
    import orjson
    from sklearn.linear_model import LogisticRegression

    from mlops_assets.data.snapshot import read_source
    from mlops_assets.model.pipeline_model import fit_pipeline_model
    from mlops_assets.serving.invocations import Invocations
    from mlops_assets.serving.loading import LoadedModel
    from mlops_assets.serving.row_checks import column_rules
    from mlops_assets.serving.settings import EndpointSettings
    from mlops_assets.serving.state import ServingState
    from mlops_assets.serving.telemetry import SCORING_ROUTE, Telemetry
    from mlops_assets.spec import load_spec
    from tests.conftest import REPO

    spec = load_spec(REPO / "pipelines" / "breast_cancer.yaml")
    data = read_source(spec, REPO / "pipelines").frame
    loaded = LoadedModel("1", fit_pipeline_model(spec, data, LogisticRegression(max_iter=1000)))
    looked_up = tuple(spec.input_columns[:3])
    online = data[list(looked_up)].head(2).assign(customer_id=[7, 8], updated_at=pd.Timestamp(NOW - DAY, unit="s"))
    view = ServedView("bench", "customer_id", "customer_id", "updated_at", looked_up, 30 * DAY)
    dtypes = {"customer_id": "int", **{c: spec.schema_.columns[c].dtype for c in spec.input_columns}}
    sent = data[spec.input_columns[3:]].iloc[0].to_dict()

    def endpoint(on_invalid: str) -> Invocations:
        views = ViewLookup([view], clock=lambda: NOW)
        views.load("bench", online, "h")
        settings = EndpointSettings(
            spec.name,
            dtypes,
            lambda: loaded,
            schema=column_rules(spec.schema_.columns),
            on_invalid=on_invalid,
            feature_views=views,
        )
        return Invocations(settings, Telemetry([SCORING_ROUTE], dict))

    body = orjson.dumps({"dataframe_records": [{"customer_id": 8, **sent}, {"customer_id": 9, **sent}]})
    state = ServingState().serving(loaded)
    rejected = endpoint("reject").score(body, "application/json", state)
    assert rejected.status == 400
    assert "row 1, column 'customer_id': feature view 'bench': missing entity" in rejected.error
    flagged = endpoint("flag").score(body, "application/json", state)
    assert flagged.status == 200 and flagged.invalid[0] is None and "missing entity" in flagged.invalid[1]
    first = looked_up[0]
    assert flagged.columns[first][0] == data[first].iloc[1] and np.isnan(flagged.columns[first][1])
    combined = pd.DataFrame([{**data[list(looked_up)].iloc[1].to_dict(), **sent}])  # customer 8's values, sent ones
    expected = loaded.model.predict(combined).labels.tolist()
    assert orjson.loads(flagged.body)["predictions"][0] == expected[0]
