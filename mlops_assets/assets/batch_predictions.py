"""``batch_predictions`` (specs with ``batch:``): a dataset scored by the deployed champion, in record batches."""

import dagster as dg

from mlops_assets.assets.context import PipelineContext, pipeline_model, signature_once
from mlops_assets.assets.display import shown
from mlops_assets.assets.kinds import Kind
from mlops_assets.contracts import ArtifactStore, ModelRegistry
from mlops_assets.data.locations import list_files
from mlops_assets.naming import StorePrefix, store_key
from mlops_assets.records import EndpointState


def build_batch_predictions(pipeline: PipelineContext) -> dg.AssetsDefinition:
    spec, base_dir = pipeline.spec, pipeline.base_dir
    batch = spec.batch
    assert batch is not None  # built only for a spec that declares batch:

    @dg.asset(
        key=dg.AssetKey([spec.name, "batch_predictions"]),
        description=f"{batch.path} scored by the deployed champion, {batch.batch_rows} rows at a time.",
        ins={"deployed_endpoint": dg.AssetIn(key=pipeline.keys["deployed_endpoint"])},
        kinds={Kind.mlflow, Kind.parquet},
        **pipeline.common,
    )
    @signature_once
    def batch_predictions(
        context: dg.AssetExecutionContext,
        store: ArtifactStore,
        registry: ModelRegistry,
        deployed_endpoint: EndpointState,
    ):
        import time

        from mlops_assets.serving.batch import open_dataset, read_batches, score_batches

        files = list_files(batch.path, base_dir)
        dataset = open_dataset(files)
        id_column = spec.id_column if spec.id_column in dataset.schema.names else None
        columns = spec.input_columns + ([id_column] if id_column else [])
        model = pipeline_model(registry.load(spec.name, deployed_endpoint.model_version))
        output_key = store_key(spec.name, StorePrefix.batch_predictions, f"{context.run_id}.parquet")
        started = time.perf_counter()
        batches = read_batches(dataset, columns, batch.batch_rows)
        with store.open_write(output_key) as output:
            rows = score_batches(model, deployed_endpoint.model_version, batches, output, id_column)
        seconds = time.perf_counter() - started
        return dg.Output(
            {"key": output_key, "rows": rows, "model_version": deployed_endpoint.model_version},
            metadata=shown(
                {
                    "rows": rows,
                    "model_version": deployed_endpoint.model_version,
                    "rows_per_second": rows / seconds if seconds else 0.0,
                    "input_files": dg.MetadataValue.json(files),
                    "predictions": dg.MetadataValue.path(store.uri(output_key)),
                }
            ),
        )

    return batch_predictions
