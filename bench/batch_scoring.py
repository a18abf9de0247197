"""Batch scoring throughput and peak memory at 10 million rows x 20 features.

Side by side in one run, each in its own process so peak RSS is comparable:
- ours: ``mlops_assets.serving.batch.score_batches`` over pyarrow record batches (what `batch_predictions` runs);
- MLflow pyfunc: the same logged model loaded with ``mlflow.pyfunc.load_model``, fed pandas chunks of the
  same size (what a user of MLflow alone would write);
- all at once: the whole file read into pandas and scored in one call.
Usage: python bench/batch_scoring.py [--rows 10000000] [--batch-rows 65536]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
N_FEATURES = 20
SPEC = """
name: bench
task: binary
target: y
source: {path: train.parquet}
schema:
  columns:
%s
    y: {dtype: int, isin: [0, 1]}
model:
  estimator: sklearn.linear_model.LogisticRegression
  params: {max_iter: 500}
"""


def prepare(folder: Path, rows: int) -> None:
    """Training data, a fitted model (pickled, and logged as an MLflow pyfunc) and the file to score."""
    import pickle

    import mlflow
    from sklearn.linear_model import LogisticRegression

    from mlops_assets.model.pipeline_model import fit_pipeline_model
    from mlops_assets.model.pyfunc import PipelineModelWrapper
    from mlops_assets.spec import load_spec

    rng = np.random.default_rng(0)
    names = [f"x{i}" for i in range(N_FEATURES)]
    weights = rng.normal(size=N_FEATURES)
    train = pd.DataFrame(rng.normal(size=(20_000, N_FEATURES)), columns=names)
    train["y"] = (train.to_numpy() @ weights + rng.normal(size=len(train)) > 0).astype(int)
    train.to_parquet(folder / "train.parquet")
    (folder / "bench.yaml").write_text(SPEC % "\n".join(f"    {n}: {{dtype: float}}" for n in names))
    model = fit_pipeline_model(load_spec(folder / "bench.yaml"), train, LogisticRegression(max_iter=500))
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = mlflow.create_experiment("bench", artifact_location=str(folder / "artifacts"))
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.pyfunc.log_model(name="model", python_model=PipelineModelWrapper(model), pip_requirements=[])
    (folder / "model_uri").write_text(info.model_uri)
    chunk = pa.table({n: rng.normal(size=1_000_000) for n in names})
    with pq.ParquetWriter(folder / "score.parquet", chunk.schema) as writer:
        for _ in range(rows // 1_000_000):
            writer.write_table(chunk, row_group_size=131_072)


def run_method(method: str, folder: Path, batch_rows: int) -> dict:
    import pickle

    started = time.perf_counter()
    if method == "ours (record batches)":
        from mlops_assets.serving.batch import open_dataset, read_batches, score_batches

        model = pickle.loads((folder / "model.pkl").read_bytes())
        batches = read_batches(open_dataset([str(folder / "score.parquet")]), None, batch_rows)
        with open(folder / "out.parquet", "wb") as output:
            rows = score_batches(model, "1", batches, output, None)
    elif method == "MLflow pyfunc (pandas chunks)":
        import mlflow

        mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
        model = mlflow.pyfunc.load_model((folder / "model_uri").read_text())
        rows = 0
        # pre_buffer off, as ours: pyarrow's default would hold the whole file in memory
        for batch in pq.ParquetFile(folder / "score.parquet", pre_buffer=False).iter_batches(batch_size=batch_rows):
            rows += len(model.predict(batch.to_pandas()))
    else:
        model = pickle.loads((folder / "model.pkl").read_bytes())
        frame = pd.read_parquet(folder / "score.parquet")
        rows = len(model.predict(frame).labels)
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--batch-rows", type=int, default=65_536)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:
        print(json.dumps(run_method(args.method, Path(args.folder), args.batch_rows)))
        return
    folder = Path(tempfile.mkdtemp())
    prepare(folder, args.rows)
    size = (folder / "score.parquet").stat().st_size / 2**20
    print(f"{args.rows:,} rows x {N_FEATURES} features ({size:.0f} MiB parquet), batches of {args.batch_rows:,} rows")
    print("\n| method | rows/s | seconds | peak RSS MiB |\n|---|---|---|---|")
    for method in ("ours (record batches)", "MLflow pyfunc (pandas chunks)", "all at once (pandas)"):
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--method",
                method,
                "--folder",
                str(folder),
                "--batch-rows",
                str(args.batch_rows),
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        if done.returncode != 0:
            print(f"| {method} | failed: {done.stderr.strip().splitlines()[-1]} | | |")
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        rate = result["rows"] / result["seconds"]
        print(f"| {method} | {rate:,.0f} | {result['seconds']:.1f} | {result['peak_mib']:.0f} |")


if __name__ == "__main__":
    main()
