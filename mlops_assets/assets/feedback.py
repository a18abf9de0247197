"""The ``feedback`` asset: what production taught, as a versioned dataset upstream of training.

Its lineage in the asset graph is ``inference_log`` + ``labels`` (external assets: the endpoint and the
label feed write them, not Dagster) -> ``feedback`` -> ``validated_features``. Rows are named by content
like the raw snapshot, so unchanged feedback starts no new work and any version's rows can be read back.
"""

from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.assets.context import PipelineContext, signature_once
from mlops_assets.assets.kinds import Kind, file_kinds
from mlops_assets.contracts import ArtifactStore
from mlops_assets.data.locations import log_files, log_prefix
from mlops_assets.naming import StorePrefix, store_key
from mlops_assets.records import FeedbackSet

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec


def build_external_assets(pipeline: PipelineContext) -> list[dg.AssetSpec]:
    """The inference log and the label batches: written outside Dagster, shown as the feedback's sources."""
    spec, keys = pipeline.spec, pipeline.keys
    specs = [
        dg.AssetSpec(
            keys["inference_log"],
            description="Every request the endpoint scored, with its id, inputs as served and answer "
            f"(parquet under {log_prefix(spec.name)}/ in the artifact store).",
            group_name=spec.name,
            kinds={Kind.parquet},
        )
    ]
    if spec.source.labels is not None:
        specs.append(
            dg.AssetSpec(
                keys["labels"],
                description=f"Label batches as they land in {spec.source.labels.path}.",
                group_name=spec.name,
                kinds=file_kinds(spec.source.labels.path),
            )
        )
    return specs


def build_feedback(pipeline: PipelineContext) -> dg.AssetsDefinition:
    spec, base_dir, keys = pipeline.spec, pipeline.base_dir, pipeline.keys

    @dg.asset(
        key=keys["feedback"],
        description="Logged requests joined with their labels by id: labelled production rows that train and "
        "judge the next version. Rejected labels are quarantined with the reason.",
        deps=[keys["inference_log"], keys["labels"]],
        kinds={Kind.pandas, Kind.parquet},
        check_specs=[
            dg.AssetCheckSpec(
                "labels_accounted_for",
                asset=keys["feedback"],
                description="label rows in = labels accepted + duplicates + labels quarantined",
            )
        ],
        **pipeline.common,
    )
    @signature_once
    def feedback(context: dg.AssetExecutionContext, store: ArtifactStore):
        import pyarrow as pa

        from mlops_assets.data.feedback import join_feedback, read_label_batches
        from mlops_assets.data.snapshot import content_hash, source_ids

        logged, skipped = _read_log(store, spec)
        batches = read_label_batches(spec, base_dir)
        joined = join_feedback(spec, logged, batches.labels, source_ids(spec, base_dir))
        digest = content_hash(joined.rows)
        key = store_key(spec.name, StorePrefix.feedback, f"{digest}.parquet")
        if not store.exists(key):
            store.write_table(key, pa.Table.from_pandas(joined.rows, preserve_index=False))
        quarantine = _quarantine(batches.quarantined, joined.quarantined)
        quarantine_key = None
        if len(quarantine):
            quarantine_key = store_key(spec.name, StorePrefix.feedback, f"{digest}-labels-quarantine.parquet")
            store.write_table(quarantine_key, pa.Table.from_pandas(quarantine.astype(str), preserve_index=False))
            context.log.warning(f"{len(quarantine)} label rows quarantined in {store.uri(quarantine_key)}")
        for file, reason in batches.unreadable.items():
            context.log.warning(f"skipped unreadable label file {file}: {reason}")
        reasons = {**batches.counts, **joined.counts}
        yield dg.Output(
            FeedbackSet(key, digest, len(joined.rows), quarantine_key),
            data_version=dg.DataVersion(digest),
            metadata={
                "labelled_production_rows": len(joined.rows),
                "content_hash": digest,
                "feedback": dg.MetadataValue.path(store.uri(key)),
                "labels_quarantined": len(quarantine),
                "quarantine": dg.MetadataValue.path(store.uri(quarantine_key)) if quarantine_key else "none",
                "counts": dg.MetadataValue.json(reasons),
                "label_files": dg.MetadataValue.json(batches.files),
                "unreadable_label_files": dg.MetadataValue.json(batches.unreadable),
                "skipped_log_files": dg.MetadataValue.json(skipped),
            },
        )
        label_rows = batches.counts["label_rows"]
        accounted = len(batches.labels) + batches.counts["duplicates"] + len(batches.quarantined)
        yield dg.AssetCheckResult(
            check_name="labels_accounted_for",
            passed=label_rows == accounted,
            metadata={"label_rows": label_rows, "accounted": accounted, **reasons},
        )

    return feedback


def _read_log(store: ArtifactStore, spec: "PipelineSpec"):
    """The logged ids, times and inputs; unreadable files are skipped and named."""
    import pyarrow as pa

    columns = ["timestamp", spec.id_column, *spec.input_columns]
    tables, skipped = [], []
    for key in log_files(store, log_prefix(spec.name)):
        try:
            table = store.read_table(key)
        except (OSError, pa.ArrowException):
            skipped.append(key)
            continue
        tables.append(table.select([c for c in columns if c in table.column_names]))
    if not tables:  # typed as the log's columns, so "nothing served yet" always hashes alike
        from mlops_assets.serving.inference_log import log_schema

        dtypes: dict[str, str] = {c: spec.schema_.columns[c].dtype for c in spec.input_columns}
        tables = [log_schema(dtypes, spec.task, spec.id_column).empty_table().select(columns)]
    return pa.concat_tables(tables, promote_options="permissive").to_pandas(), skipped


def _quarantine(labels, unknown):
    import pandas as pd

    return pd.concat([labels, unknown], ignore_index=True) if len(unknown) else labels
