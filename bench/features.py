"""Feature views against Feast 0.67, on the same data: the point-in-time join of 1,000,000 examples against
10,000,000 feature rows, and the online lookup latency per request for 10 features; and the endpoint's p50 with
view lookups against without (``endpoint_with_lookups``: the request logic in process, ours only).

- ours: ``mlops_assets.feature_views.as_of_join`` on the feature parquet (timed with and without reading it);
  online, ``InMemoryOnlineStore`` and ``SQLiteOnlineStore`` looked up in process, one entity per request;
- Feast: a file-source feature view with the same TTL, ``get_historical_features(...).to_df()`` (the file
  offline store, which reads the parquet itself) and ``get_online_features`` against its SQLite online store,
  run by bench/features_feast.py with the Python of Feast's own virtualenv.
The joined values are compared example by example (by an example id Feast carries through). Feature times are
whole seconds over a year, 10 rows per entity on average, (entity, time) pairs unique: Feast breaks ties
between equal times by a created timestamp this data has not. The online tables hold the newest row of
100,000 entities (Feast's write is row by row). Prints a markdown table.

Usage: python bench/features.py [--rows-scale 1.0] [--requests 5000]
       [--feast-python bench/.feast-venv/bin/python]   (python3 -m venv bench/.feast-venv;
                                                          bench/.feast-venv/bin/pip install 'feast==0.67.*')
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mlops_assets.feature_views import (  # noqa: E402
    InMemoryOnlineStore,
    OfflineSnapshot,
    SQLiteOnlineStore,
    as_of_join,
)

FEATURES = [f"f{i}" for i in range(10)]
TTL = pd.Timedelta(days=30)
START = pd.Timestamp("2025-01-01", tz="UTC")


def prepare(workdir: Path, feature_rows: int, examples: int, online_entities: int) -> int:
    rng = np.random.default_rng(0)
    entities = max(feature_rows // 10, 1)
    seconds = 365 * 86_400
    features = pd.DataFrame(
        {"customer_id": rng.integers(0, entities, feature_rows), "offset": rng.integers(0, seconds, feature_rows)}
    ).drop_duplicates(["customer_id", "offset"])
    features["event_timestamp"] = START + pd.to_timedelta(features.pop("offset"), unit="s")
    for name in FEATURES:
        features[name] = rng.random(len(features))
    features.reset_index(drop=True).to_parquet(workdir / "features.parquet")
    pd.DataFrame(
        {
            "example_id": np.arange(examples),
            "customer_id": rng.integers(0, entities, examples),
            "event_timestamp": START + pd.to_timedelta(rng.integers(0, seconds, examples), unit="s"),
        }
    ).to_parquet(workdir / "examples.parquet")
    newest = features.sort_values(["customer_id", "event_timestamp"]).drop_duplicates("customer_id", keep="last")
    newest.head(online_entities).reset_index(drop=True).to_parquet(workdir / "online.parquet")
    return len(features)


def our_join(workdir: Path) -> tuple[pd.DataFrame, float, float]:
    examples = pd.read_parquet(workdir / "examples.parquet")
    started = time.perf_counter()
    features = pd.read_parquet(workdir / "features.parquet")
    joining = time.perf_counter()
    joined = as_of_join(examples, features, entity="customer_id", timestamp="event_timestamp", ttl=TTL)
    done = time.perf_counter()
    return joined[["example_id", *FEATURES]], done - started, done - joining


def our_join_on_snapshot(workdir: Path) -> float:
    """The join against the same rows stored in (entity, time) order, as a view's offline snapshot is."""
    examples = pd.read_parquet(workdir / "examples.parquet")
    snapshot = pd.read_parquet(workdir / "features.parquet").sort_values(["customer_id", "event_timestamp"])
    started = time.perf_counter()
    as_of_join(examples, snapshot, entity="customer_id", timestamp="event_timestamp", ttl=TTL)
    return time.perf_counter() - started


def our_online(workdir: Path, requests: int) -> dict[str, list[float]]:
    newest = pd.read_parquet(workdir / "online.parquet")
    snapshot = OfflineSnapshot("customers", newest, "bench", len(newest))
    keys = np.random.default_rng(1).choice(newest["customer_id"].to_numpy(), requests).tolist()
    latencies = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, store in {
            "in memory": InMemoryOnlineStore("customer_id"),
            "SQLite": SQLiteOnlineStore(Path(folder) / "online.db", "customers", "customer_id"),
        }.items():
            store.write(snapshot)
            timings = []
            for key in keys:
                started = time.perf_counter_ns()
                row = store.get([key])[0]
                values = [row[name] for name in FEATURES]
                timings.append(time.perf_counter_ns() - started)
            assert len(values) == 10
            latencies[name] = [ns / 1000 for ns in timings]
    return latencies


def endpoint_with_lookups(requests: int, entities: int = 100_000) -> dict[str, list[float]]:
    """The endpoint's request logic (``Invocations.score``: parse, look up, check, score; no socket) for one
    row of the breast_cancer model, its first 10 features sent by the client (without) or looked up by an
    entity key in a view's online table of ``entities`` rows (with): latencies in microseconds."""
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
    from mlops_assets.serving.view_lookup import ServedView, ViewLookup
    from mlops_assets.spec import load_spec

    spec = load_spec(REPO / "pipelines" / "breast_cancer.yaml")
    data = read_source(spec, REPO / "pipelines").frame
    loaded = LoadedModel("1", fit_pipeline_model(spec, data, LogisticRegression(max_iter=1000)))
    dtypes = {c: spec.schema_.columns[c].dtype for c in spec.input_columns}
    looked_up = tuple(spec.input_columns[:10])
    rng = np.random.default_rng(2)
    table = pd.DataFrame({"customer_id": np.arange(entities), "updated_at": pd.Timestamp.now(tz="UTC")})
    rows = data[list(looked_up)].iloc[rng.integers(0, len(data), entities)].reset_index(drop=True)
    table = pd.concat([table, rows], axis=1)
    view = ServedView("bench", "customer_id", "customer_id", "updated_at", looked_up, 86_400.0)
    lookup = ViewLookup([view])
    lookup.load("bench", table, "bench")
    row = data[spec.input_columns].iloc[0].to_dict()
    schema = column_rules(spec.schema_.columns)
    keys = rng.integers(0, entities, requests).tolist()
    cases = {
        "without": (
            EndpointSettings(spec.name, dtypes, lambda: loaded, schema=schema),
            [orjson.dumps({"inputs": row})] * requests,
        ),
        "with lookups": (
            EndpointSettings(
                spec.name, {"customer_id": "int", **dtypes}, lambda: loaded, schema=schema, feature_views=lookup
            ),
            [
                orjson.dumps({"inputs": {"customer_id": k, **{c: row[c] for c in spec.input_columns[10:]}}})
                for k in keys
            ],
        ),
    }
    latencies = {}
    for name, (settings, bodies) in cases.items():
        invocations = Invocations(settings, Telemetry([SCORING_ROUTE], dict))
        state = ServingState().serving(loaded)
        for body in bodies[:200]:  # warm up
            invocations.score(body, "application/json", state)
        timings = []
        for body in bodies:
            started = time.perf_counter_ns()
            scored = invocations.score(body, "application/json", state)
            timings.append(time.perf_counter_ns() - started)
            assert scored.status == 200, scored.error
        latencies[name] = [ns / 1000 for ns in timings]
    return latencies


def compare(ours: pd.DataFrame, feast: pd.DataFrame) -> str:
    """How many examples got the same ten values (or the same absence of them) from both."""
    feast = feast.set_index("example_id").reindex(ours["example_id"])
    a, b = ours[FEATURES].to_numpy(np.float64), feast[FEATURES].to_numpy(np.float64)
    same = ((a == b) | (np.isnan(a) & np.isnan(b))).all(axis=1)
    found = (~np.isnan(a[:, 0])).sum()
    return f"{same.sum():,} of {len(ours):,} examples identical ({found:,} with a value)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows-scale", type=float, default=1.0, help="1.0: 10M feature rows, 1M examples")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3, help="runs of our join; the median is shown")
    parser.add_argument("--feast-python", default=str(REPO / "bench" / ".feast-venv" / "bin" / "python"))
    args = parser.parse_args()
    feature_rows, examples = int(10_000_000 * args.rows_scale), int(1_000_000 * args.rows_scale)
    online_entities = min(100_000, max(feature_rows // 10, 1))
    started = (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()[0])
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        feature_rows = prepare(workdir, feature_rows, examples, online_entities)
        runs = [our_join(workdir) for _ in range(args.repeats)]
        ours = runs[0][0]
        ours_total_s, ours_join_s = (statistics.median(run[i] for run in runs) for i in (1, 2))
        ours_sorted_s = statistics.median(our_join_on_snapshot(workdir) for _ in range(args.repeats))
        online = our_online(workdir, args.requests)
        done = subprocess.run(
            [args.feast_python, str(REPO / "bench" / "features_feast.py"), str(workdir), str(args.requests)],
            capture_output=True,
            text=True,
        )
        if done.returncode:
            sys.exit(f"Feast failed:\n{done.stderr[-4000:]}")
        feast = json.loads(done.stdout.strip().splitlines()[-1])
        agreement = compare(ours, pd.read_parquet(workdir / "feast_joined.parquet"))
    print(
        f"Point-in-time join: {examples:,} examples x {feature_rows:,} feature rows, "
        f"TTL 30 days; {agreement}; ours: median of {args.repeats} runs\n"
    )
    print("| measure | ours | Feast 0.67 |")
    print("|---|---|---|")
    print(f"| join, reading the parquet included | {ours_total_s:.2f} s | {feast['join_s']:.2f} s |")
    print(f"| join, frames in memory | {ours_join_s:.2f} s | - |")
    print(f"| join, frames in memory, features in snapshot order | {ours_sorted_s:.2f} s | - |")
    for name, latencies in online.items():
        p50, p99 = np.percentile(latencies, [50, 99])
        f50, f99 = np.percentile(feast["online_us"], [50, 99])
        print(
            f"| online lookup p50 / p99, 10 features, ours {name} | {p50:.1f} / {p99:.1f} us | "
            f"{f50:.0f} / {f99:.0f} us (SQLite) |"
        )
    endpoint = endpoint_with_lookups(args.requests)
    p50s = {name: np.percentile(latencies, 50) for name, latencies in endpoint.items()}
    print(
        f"| endpoint p50, one row, 10 of 30 features looked up against sent (request logic, no socket) | "
        f"{p50s['with lookups']:.0f} us against {p50s['without']:.0f} us | - |"
    )
    print(
        f"\nOnline tables: newest row of {online_entities:,} entities; {args.requests:,} requests of one entity; "
        f"Feast's write_to_online_store took {feast['online_write_s']:.1f} s; "
        f"Feast's value check {'passed' if feast['online_value_ok'] else 'FAILED'}."
    )
    print(f"Run {started[0]}; 1-minute load {started[1]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end.")


if __name__ == "__main__":
    main()
