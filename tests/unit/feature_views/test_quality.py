"""The measures behind a view's checks: a mostly missing feature fails the null share, and every source row is
either in the snapshot or set aside with a reason."""

import pandas as pd

from mlops_assets.feature_views import build_snapshot
from mlops_assets.feature_views.quality import null_shares, rows_conserved
from mlops_assets.spec.feature_view import FeatureView

VIEW = FeatureView(
    name="devices",
    entity="device",
    timestamp="seen",
    source={"path": "s3://bucket/devices/"},
    features=["risk"],
    ttl="1d",
)


def test_a_mostly_missing_feature_fails_the_null_share_and_says_which():
    source = pd.DataFrame({"device": ["a", "b", "c"], "seen": ["2025-01-01"] * 3, "risk": [0.1, None, None]})
    shares = null_shares(build_snapshot(source, VIEW), VIEW, threshold=0.5)
    assert shares.by_feature == {"risk": 2 / 3} and not shares.passed


def test_rows_set_aside_are_counted_so_the_rows_are_conserved():
    source = pd.DataFrame({"device": ["a", None, "c"], "seen": ["2025-01-01", "2025-01-01", "never"], "risk": 1.0})
    conserved = rows_conserved(build_snapshot(source, VIEW))
    assert conserved.passed and conserved.snapshot_rows == 1 and sum(conserved.set_aside.values()) == 2
