"""Sensor tick time against a 10-million-row inference log.

A tick must stay cheap because the daemon runs it every 30 s: it lists the log and reads parquet footers of
new files only. For contrast, the table also times the naive tick that reads the log to count its rows.
Usage: python bench/sensor_tick.py [--rows 10000000] [--files 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the code location's packages (resources/, sensors/) as definitions.py sees them


def write_log(folder: Path, spec, rows: int, files: int) -> None:
    """``files`` parquet files of the endpoint's log schema, as the server writes them."""
    from mlops_assets.serving.inference_log import log_schema

    schema = log_schema({c: spec.schema_.columns[c].dtype for c in spec.input_columns}, spec.task, spec.id_column)
    rng = np.random.default_rng(0)
    per_file = rows // files
    columns = {}
    for field in schema:
        if field.type == pa.float64():
            columns[field.name] = pa.array(rng.normal(size=per_file))
        elif pa.types.is_timestamp(field.type):
            columns[field.name] = pa.array(np.full(per_file, 1_795_000_000_000), pa.int64()).cast(field.type)
        else:
            columns[field.name] = pa.array(np.full(per_file, "x"), pa.string())
    table = pa.Table.from_pydict(columns, schema=schema)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        pq.write_table(table, folder / f"part-{1_000_000 + i:020d}.parquet")


def timed(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp())
    os.environ["MLOPS_HOME"] = str(home)

    from mlops_assets.definitions.folder import build_definitions
    from mlops_assets.local.layout import LocalLayout
    from mlops_assets.resources import local_resources
    from mlops_assets.sensors import build_sensors
    from mlops_assets.spec import load_spec

    layout = LocalLayout.from_env().ensure()
    defs = build_definitions(REPO / "pipelines", local_resources(layout), build_sensors)
    sensor = next(s for s in defs.sensors if s.name == "breast_cancer_drift_sensor")
    spec = load_spec(REPO / "pipelines" / "breast_cancer.yaml")
    folder = layout.data / "breast_cancer" / "inference_log"
    started = time.perf_counter()
    write_log(folder, spec, args.rows, args.files)
    size = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
    print(f"wrote {args.rows:,} rows in {args.files} files ({size:.0f} MiB) in {time.perf_counter() - started:.1f} s")

    with dg.instance_for_test() as instance:
        cursor: dict[str, str | None] = {"value": None}

        def tick(keep_cursor: bool):
            context = dg.build_sensor_context(
                instance=instance,
                cursor=cursor["value"] if keep_cursor else None,
                resources=local_resources(layout).by_key(),
                definitions=defs,
            )
            data = sensor.evaluate_tick(context)
            if keep_cursor:
                cursor["value"] = data.cursor

        cold = timed(lambda: tick(keep_cursor=False), args.repeat)
        tick(keep_cursor=True)
        extra = pq.read_table(next(folder.iterdir()))

        def steady():
            pq.write_table(extra, folder / f"part-{time.time_ns():020d}.parquet")
            tick(keep_cursor=True)

        warm = timed(steady, args.repeat)
        naive = timed(lambda: pq.ParquetDataset(folder).read(columns=["prediction"]).num_rows, args.repeat)

    print(f"\n| tick over a {args.rows / 1e6:g}M-row log in {args.files} files | median s | max s |\n|---|---|---|")
    for label, times in (
        ("first tick, no cursor: lists the log, reads every footer", cold),
        ("steady tick: one new file since the last tick", warm),
        ("naive tick: read one column of the whole log to count rows", naive),
    ):
        print(f"| {label} | {statistics.median(times):.3f} | {max(times):.3f} |")


if __name__ == "__main__":
    main()
