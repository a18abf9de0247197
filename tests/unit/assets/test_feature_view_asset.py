"""A view's asset writes its content-hashed offline snapshot and online table, points the online refresh at
them, and reports its three checks with what they measured."""

import json
from datetime import timedelta

import dagster as dg
import pandas as pd

from mlops_assets.assets.feature_view import build_feature_view_asset, view_checks
from mlops_assets.feature_views import build_snapshot
from mlops_assets.naming import feature_view_key
from mlops_assets.resources.artifact_store import FsspecArtifactStore
from mlops_assets.spec.feature_view import load_feature_view

VIEW = """\
name: customers
entity: customer_id
timestamp: event_time
source: {path: customers.csv}
features: [age]
aggregations:
  - {column: spend, function: sum, window: 30d}
ttl: 90d
"""


def write_view(folder, rows):
    rows.to_csv(folder / "customers.csv", index=False)
    (folder / "customers.yaml").write_text(VIEW)
    return load_feature_view(folder / "customers.yaml"), folder / "customers.yaml"


def test_materializing_a_view_writes_both_tables_by_content_hash_and_runs_its_checks(tmp_path):
    now = pd.Timestamp.now(tz="UTC").floor("s")
    rows = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, None],
            "event_time": [now - pd.Timedelta(days=3), now - pd.Timedelta(days=1), now - pd.Timedelta(days=2), now],
            "age": [30, 31, 40, 50],
            "spend": [1.0, 2.0, 3.0, 4.0],
        }
    )
    view, path = write_view(tmp_path, rows)
    store = FsspecArtifactStore(root=str(tmp_path / "store"))
    result = dg.materialize(
        [build_feature_view_asset(view, path)], resources={"store": store}, instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success
    node = feature_view_key(view.name).to_python_identifier()
    output = result.output_for_node(node)
    online = store.read_table(output["online"]).to_pandas()
    assert online["customer_id"].tolist() == [1, 2] and online["age"].tolist() == [31, 40]
    assert store.read_table(output["offline"]).num_rows == 3
    pointer = json.loads(store.read_bytes("feature_views/customers/online/current.json"))
    assert pointer["content_hash"] == output["content_hash"] and pointer["online_table"] == output["online"]
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert all(checks[name].passed for name in ("fresh_within_ttl", "null_share", "rows_conserved"))
    assert checks["rows_conserved"].metadata["source_rows"].value == 4
    assert result.asset_materializations_for_node(node)[0].asset_key == feature_view_key(view.name)


def test_a_view_older_than_its_ttl_fails_its_freshness_check(tmp_path):
    old = pd.Timestamp("2020-01-01", tz="UTC")
    view, _ = write_view(tmp_path, pd.DataFrame({"customer_id": [1], "event_time": [old], "age": [3], "spend": [1]}))
    snapshot = build_snapshot(pd.read_csv(tmp_path / "customers.csv"), view)
    checks = {c.check_name: c for c in view_checks(snapshot, view, old + view.ttl + timedelta(seconds=1))}
    assert not checks["fresh_within_ttl"].passed
    assert checks["fresh_within_ttl"].metadata["ttl_hours"].value == 90 * 24
    fresh = {c.check_name: c for c in view_checks(snapshot, view, old + view.ttl)}
    assert fresh["fresh_within_ttl"].passed
