"""``feature_views/<name>``: one feature view as an asset, shared by every pipeline that uses it.

Each materialization reads the view's source, computes its features (``feature_views.build_snapshot``) and
writes two parquet files to the artifact store, both named by the snapshot's content hash, which is also the
asset's data version (an unchanged source starts no new work downstream; a model version records the hash):
the offline snapshot the training sets are joined against, and the online table (the newest row per entity)
that an endpoint loads into its ``OnlineStore``. ``<view>/online/current.json`` then points at the new online
table: the refresh an endpoint watches. Three checks say whether the view can be trusted: its newest row is
within the TTL, no feature is mostly missing, every source row is in the snapshot or set aside with a reason.
"""

import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from mlops_assets.assets.context import signature_once
from mlops_assets.assets.kinds import Kind
from mlops_assets.contracts import ArtifactStore
from mlops_assets.naming import FEATURE_VIEWS, ViewPrefix, feature_view_key, view_store_key
from mlops_assets.spec.feature_view import FeatureView

MAX_NULL_SHARE = 0.5  # above it a feature is mostly missing: the models that use it learn from the imputation


def build_feature_view_asset(view: FeatureView, view_path: Path) -> dg.AssetsDefinition:
    """The asset of ``view``, read from ``view_path`` (its relative source paths resolve against its folder)."""
    key = feature_view_key(view.name)
    checks = [
        dg.AssetCheckSpec("fresh_within_ttl", asset=key, description="The newest row is younger than the TTL."),
        dg.AssetCheckSpec("null_share", asset=key, description=f"No feature is over {MAX_NULL_SHARE:.0%} missing."),
        dg.AssetCheckSpec("rows_conserved", asset=key, description="Every source row is kept or set aside."),
    ]

    @dg.asset(
        key=key,
        description=view.description or f"Feature view {view.name}: {', '.join(view.feature_names)}.",
        kinds={Kind.pandas, Kind.parquet},
        group_name=FEATURE_VIEWS,
        code_version=view.model_dump_json(),
        check_specs=checks,
    )
    @signature_once
    def feature_view(context: dg.AssetExecutionContext, store: ArtifactStore):
        import pyarrow as pa

        from mlops_assets.feature_views import build_snapshot, newest_rows, read_view_source

        snapshot = build_snapshot(read_view_source(view, view_path.parent), view)
        digest = snapshot.content_hash
        offline_key = view_store_key(view.name, ViewPrefix.offline, f"{digest}.parquet")
        online_key = view_store_key(view.name, ViewPrefix.online, f"{digest}.parquet")
        new = not store.exists(offline_key)
        if new:
            store.write_table(offline_key, pa.Table.from_pandas(snapshot.frame, preserve_index=False))
            newest = newest_rows(snapshot.frame, view.entity)
            store.write_table(online_key, pa.Table.from_pandas(newest, preserve_index=False))
        pointer = {"content_hash": digest, "online_table": online_key, "dagster_run_id": context.run_id}
        store.write_bytes(view_store_key(view.name, ViewPrefix.online, "current.json"), json.dumps(pointer).encode())
        context.log.info(f"{'wrote' if new else 'reused'} snapshot {offline_key}")
        for reason, rows in snapshot.set_aside.items():
            context.log.warning(f"{rows} rows set aside: {reason}")
        yield dg.Output(
            {"offline": offline_key, "online": online_key, "content_hash": digest, "rows": len(snapshot.frame)},
            data_version=dg.DataVersion(digest),
            metadata={
                "rows": len(snapshot.frame),
                "entities": int(snapshot.frame[view.entity].nunique()),
                "content_hash": digest,
                "new_snapshot": new,
                "offline_snapshot": dg.MetadataValue.path(store.uri(offline_key)),
                "online_table": dg.MetadataValue.path(store.uri(online_key)),
                "features": dg.MetadataValue.json(view.feature_names),
                "set_aside": dg.MetadataValue.json(snapshot.set_aside),
            },
        )
        yield from view_checks(snapshot, view, datetime.now(UTC))

    return feature_view


def view_checks(snapshot, view: FeatureView, now: datetime):
    """The view's three checks, each with what it measured and its threshold."""
    from mlops_assets.feature_views.quality import freshness, null_shares, rows_conserved

    fresh = freshness(snapshot, view, now)
    yield dg.AssetCheckResult(
        check_name="fresh_within_ttl",
        passed=fresh.passed,
        metadata={
            "newest_event": fresh.newest_event or "none",
            "age_hours": round(fresh.age.total_seconds() / 3600, 2) if fresh.age is not None else -1.0,
            "ttl_hours": round(view.ttl.total_seconds() / 3600, 2),
        },
    )
    nulls = null_shares(snapshot, view, MAX_NULL_SHARE)
    yield dg.AssetCheckResult(
        check_name="null_share",
        passed=nulls.passed,
        metadata={"max_null_share": nulls.worst, "threshold": MAX_NULL_SHARE, **_prefixed(nulls.by_feature)},
    )
    conserved = rows_conserved(snapshot)
    yield dg.AssetCheckResult(
        check_name="rows_conserved",
        passed=conserved.passed,
        metadata={
            "source_rows": conserved.source_rows,
            "snapshot_rows": conserved.snapshot_rows,
            "set_aside": dg.MetadataValue.json(conserved.set_aside),
        },
    )


def _prefixed(shares: dict[str, float]) -> dict[str, float]:
    return {f"null_share_{name}": share for name, share in shares.items()}
