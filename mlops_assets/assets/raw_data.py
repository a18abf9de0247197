"""``raw_data``: an immutable snapshot of the declared source, named by the content hash of its rows.

The hash is the asset's Dagster data version: an unchanged source starts no new work downstream, and any
version's exact source rows can be read back, with the files they were first read from beside them
(``<hash>.sources.json``: what ``mlops-assets lineage`` shows, without the Dagster instance).
"""

import contextlib
import json

import dagster as dg

from mlops_assets.assets.context import PipelineContext, signature_once
from mlops_assets.assets.kinds import Kind
from mlops_assets.contracts import ArtifactStore
from mlops_assets.data.locations import sources_key
from mlops_assets.naming import StorePrefix, store_key
from mlops_assets.records import RawSnapshot


def build_raw_data(pipeline: PipelineContext) -> dg.AssetsDefinition:
    spec, base_dir = pipeline.spec, pipeline.base_dir

    @dg.asset(
        key=pipeline.keys["raw_data"],
        description=f"Immutable snapshot of {spec.source.path}.",
        kinds={Kind.pandas, Kind.parquet},
        **pipeline.common,
    )
    @signature_once
    def raw_data(context: dg.AssetExecutionContext, store: ArtifactStore):
        import pyarrow as pa

        from mlops_assets.data.snapshot import content_hash, read_source

        source = read_source(spec, base_dir)
        digest = content_hash(source.frame)
        snapshot_key = store_key(spec.name, StorePrefix.raw, f"{digest}.parquet")
        new = not store.exists(snapshot_key)
        size = store.write_table(snapshot_key, pa.Table.from_pandas(source.frame, preserve_index=False)) if new else 0
        context.log.info(f"{'wrote' if new else 'reused'} snapshot {snapshot_key}")
        with contextlib.suppress(FileExistsError):  # the files that first made these rows: the record stays
            files = {"source_files": source.files, "label_files": source.label_files, "dagster_run_id": context.run_id}
            store.create(sources_key(spec.name, digest), json.dumps(files, sort_keys=True).encode())
        for file, reason in source.unreadable_label_files.items():
            context.log.warning(f"skipped unreadable label file {file}: {reason}")
        if source.labels_conflicting_with_source:
            context.log.warning(
                f"{source.labels_conflicting_with_source} labels disagree with the source's own target; it was kept"
            )
        return dg.Output(
            RawSnapshot(snapshot_key, digest, len(source.frame)),
            data_version=dg.DataVersion(digest),
            metadata={
                "rows": len(source.frame),
                "columns": len(source.frame.columns),
                "content_hash": digest,
                "bytes_written": size,
                "new_snapshot": new,
                "snapshot": dg.MetadataValue.path(store.uri(snapshot_key)),
                "source_files": dg.MetadataValue.json(source.files),
                "label_files": dg.MetadataValue.json(source.label_files),
                "rows_waiting_for_labels": source.unlabeled_rows,
                "labels_conflicting_with_source": source.labels_conflicting_with_source,
                "unreadable_label_files": dg.MetadataValue.json(source.unreadable_label_files),
            },
        )

    return raw_data
