"""Feast's side of bench/features.py, run with the Python of Feast's own virtualenv (never imported by the
project): a file-store feature view over the bench's parquet files, `get_historical_features` timed on the
examples, then `get_online_features` timed per request against its SQLite online store.

Usage: <feast-venv>/bin/python bench/features_feast.py WORKDIR REQUESTS
Reads WORKDIR/{features,examples,online}.parquet and writes WORKDIR/feast_joined.parquet and a JSON line of
timings on stdout.
"""

import json
import logging
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

logging.disable(logging.WARNING)
FEATURES = [f"f{i}" for i in range(10)]


def main(workdir: Path, requests: int) -> None:
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64

    repo = workdir / "feast_repo"
    repo.mkdir(exist_ok=True)
    (repo / "feature_store.yaml").write_text(
        "project: bench\nprovider: local\nregistry: registry.db\nentity_key_serialization_version: 3\n"
        "online_store:\n  type: sqlite\n  path: online.db\noffline_store:\n  type: file\n"
    )
    store = FeatureStore(repo_path=str(repo))
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    source = FileSource(path=str(workdir / "features.parquet"), timestamp_field="event_timestamp")
    view = FeatureView(
        name="customers",
        entities=[customer],
        ttl=timedelta(days=30),
        schema=[Field(name=name, dtype=Float64) for name in FEATURES],
        source=source,
        online=True,
    )
    store.apply([customer, view])
    refs = [f"customers:{name}" for name in FEATURES]

    examples = pd.read_parquet(workdir / "examples.parquet")
    started = time.perf_counter()
    joined = store.get_historical_features(entity_df=examples, features=refs).to_df()
    join_s = time.perf_counter() - started
    joined[["example_id", *FEATURES]].to_parquet(workdir / "feast_joined.parquet")

    online = pd.read_parquet(workdir / "online.parquet")
    started = time.perf_counter()
    store.write_to_online_store("customers", online)
    write_s = time.perf_counter() - started
    keys = np.random.default_rng(1).choice(online["customer_id"].to_numpy(), requests)
    store.get_online_features(features=refs, entity_rows=[{"customer_id": int(keys[0])}])  # registry loaded
    latencies = []
    for key in keys:
        started = time.perf_counter_ns()
        values = store.get_online_features(features=refs, entity_rows=[{"customer_id": int(key)}]).to_dict()
        latencies.append(time.perf_counter_ns() - started)
    check = online.set_index("customer_id").loc[int(keys[-1]), "f0"]
    print(
        json.dumps(
            {
                "join_s": join_s,
                "online_write_s": write_s,
                "online_us": [ns / 1000 for ns in latencies],
                "online_value_ok": bool(np.isclose(values["f0"][0], check)),
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
