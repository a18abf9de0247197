"""Batch scoring throughput and peak memory at 10 million rows x 20 features: ours against MLflow's pyfunc.

Each method runs in its own process (so peak RSS is comparable), interleaved A B A B over ``--rounds`` rounds:
- ours: ``mlops_assets.serving.batch.score_batches`` over pyarrow record batches (what `batch_predictions` runs):
  one feature matrix per batch, the compiled linear function, predictions written to parquet;
- MLflow pyfunc: the same logged model loaded with ``mlflow.pyfunc.load_model``, fed pandas chunks of the same
  size (what a user of MLflow alone would write), predictions kept in memory only (as this bench measured it
  before);
- MLflow pyfunc, written: the same, its predictions written to parquet chunk by chunk, as ours writes them;
- all at once (``--all-at-once``, run once at the end): the whole file read into pandas and scored in one call.
Time runs from the model loaded (imports and loading excluded, for every method) to the last row scored (and
written). Peak RSS is the process's own high-water mark (``VmHWM``): interpreter and libraries included.
Usage: python bench/batch_scoring.py [--rows 10000000] [--batch-rows 65536] [--rounds 2] [--all-at-once]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
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


OURS, MLFLOW, MLFLOW_WRITTEN, ALL_AT_ONCE = (
    "ours (record batches, compiled)",
    "MLflow pyfunc (pandas chunks, predict only)",
    "MLflow pyfunc (pandas chunks, written)",
    "all at once (pandas)",
)


def run_method(method: str, folder: Path, batch_rows: int) -> dict:
    import pickle

    if method == OURS:
        from mlops_assets.serving.batch import open_dataset, read_batches, score_batches

        model = pickle.loads((folder / "model.pkl").read_bytes())
        started = time.perf_counter()  # the model loaded and the libraries imported, for every method
        batches = read_batches(open_dataset([str(folder / "score.parquet")]), None, batch_rows)
        with open(folder / "out.parquet", "wb") as output:
            rows = score_batches(model, "1", batches, output, None)
    elif method in (MLFLOW, MLFLOW_WRITTEN):
        import mlflow

        mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
        model = mlflow.pyfunc.load_model((folder / "model_uri").read_text())
        started = time.perf_counter()
        rows, writer = 0, None
        # pre_buffer off, as ours: pyarrow's default would hold the whole file in memory
        for batch in pq.ParquetFile(folder / "score.parquet", pre_buffer=False).iter_batches(batch_size=batch_rows):
            predictions = model.predict(batch.to_pandas())
            rows += len(predictions)
            if method == MLFLOW_WRITTEN:
                table = pa.table({"prediction": pa.array(np.asarray(predictions).astype(str))})
                writer = writer or pq.ParquetWriter(folder / "out-mlflow.parquet", table.schema)
                writer.write_table(table)
        if writer is not None:
            writer.close()
    else:
        model = pickle.loads((folder / "model.pkl").read_bytes())
        started = time.perf_counter()
        frame = pd.read_parquet(folder / "score.parquet")
        rows = len(model.predict(frame).labels)
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": seconds, "peak_mib": peak_rss_mib()}


def peak_rss_mib() -> float:
    """This process's peak resident memory. Linux's ``ru_maxrss`` carries the parent's peak across fork and exec
    (every method read 545 MiB, the parent's after ``prepare``); ``VmHWM`` is the process's own."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(method: str, folder: Path, batch_rows: int) -> dict | str:
    """One run of ``method`` in a process of its own: its figures, or why it failed."""
    command = [sys.executable, __file__, "--method", method, "--folder", str(folder), "--batch-rows", str(batch_rows)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        return f"failed: {done.stderr.strip().splitlines()[-1]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--batch-rows", type=int, default=65_536)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--all-at-once", action="store_true")
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:
        print(json.dumps(run_method(args.method, Path(args.folder), args.batch_rows)))
        return
    folder = Path(tempfile.mkdtemp())
    prepare(folder, args.rows)
    size = (folder / "score.parquet").stat().st_size / 2**20
    load = os.getloadavg()[0]
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    print(f"{when} UTC, {os.cpu_count()} cores, 1-minute load before {load:.2f}")
    print(f"{args.rows:,} rows x {N_FEATURES} features ({size:.0f} MiB parquet), batches of {args.batch_rows:,} rows")
    print(f"interleaved, {args.rounds} rounds; each method in its own process\n")
    print("| round | method | rows/s | seconds | peak RSS MiB |\n|---|---|---|---|---|")
    results: dict[str, list[dict]] = {}
    methods = [OURS, MLFLOW, MLFLOW_WRITTEN]
    for round_ in range(1, args.rounds + 1):
        for method in methods if round_ % 2 else methods[::-1]:  # A B C, then C B A: neither always goes first
            result = measure(method, folder, args.batch_rows)
            if isinstance(result, str):
                print(f"| {round_} | {method} | {result} | | |")
                continue
            results.setdefault(method, []).append(result)
            rate, seconds, peak = result["rows"] / result["seconds"], result["seconds"], result["peak_mib"]
            print(f"| {round_} | {method} | {rate:,.0f} | {seconds:.1f} | {peak:.0f} |", flush=True)
    if args.all_at_once:
        result = measure(ALL_AT_ONCE, folder, args.batch_rows)
        if isinstance(result, dict):
            rate = result["rows"] / result["seconds"]
            print(f"| - | {ALL_AT_ONCE} | {rate:,.0f} | {result['seconds']:.1f} | {result['peak_mib']:.0f} |")
    print("\n| method | rows/s (median) | range | peak RSS MiB (max) | ours / it |\n|---|---|---|---|---|")
    ours = statistics.median(r["rows"] / r["seconds"] for r in results.get(OURS, [])) if OURS in results else None
    for method, runs in results.items():
        rates = [r["rows"] / r["seconds"] for r in runs]
        median = statistics.median(rates)
        ratio = f"{ours / median:.2f}x" if ours else "-"
        peak = max(r["peak_mib"] for r in runs)
        print(f"| {method} | {median:,.0f} | {min(rates):,.0f}-{max(rates):,.0f} | {peak:.0f} | {ratio} |")
    print(f"\n1-minute load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
