"""Drift detection side by side: our ``compute_drift``, a plain scipy loop and Evidently's DataDriftPreset.

The data: reference and current windows of N rows x 50 numeric + 5 categorical columns from a fixed seed;
10 columns drift (8 numeric: 4 mean shifts of 0.25 std, 4 spreads x1.3; 2 categorical with frequencies
mixed 30% towards their reverse). Both windows are written to parquet once; each method then runs in its
own subprocess that reads them, so its peak RSS (ru_maxrss of that process: interpreter, libraries, both
windows as the method takes them, and whatever the method allocates) compares like with like. Time is
the method call alone, data already in memory. Evidently needs pandas<3, so it runs under the python
given by --peer-python (see bench/peers-requirements.txt).

Usage: python bench/drift.py [--rows 200000 1000000] [--peer-python /tmp/peers-venv/bin/python]
                             [--methods ours scipy evidently] [--repeat 1]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

NUMERIC = [f"num_{i:02d}" for i in range(50)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
SHIFTED = ["num_03", "num_14", "num_27", "num_41"]  # mean + 0.25 std
SPREAD = ["num_09", "num_20", "num_33", "num_46"]  # (x - mean) * 1.3 + mean
REMIXED = ["cat_1", "cat_3"]  # frequencies 70% as before, 30% reversed
DRIFTED = set(SHIFTED + SPREAD + REMIXED)
HEADER = "| method | time s | peak memory MiB | columns flagged | correct (exactly the 10)? | false positives |"
INSTALL = "python3 -m venv /tmp/peers-venv && /tmp/peers-venv/bin/pip install -r bench/peers-requirements.txt"


def generate(rows: int, seed: int = 0) -> tuple[pa.Table, pa.Table]:
    """Reference and current windows: normal, log-normal and Poisson-count columns; Zipf-like categories."""
    rng = np.random.default_rng(seed)
    reference, current = {}, {}
    for i, name in enumerate(NUMERIC):
        mean, std = rng.uniform(-50, 50), rng.uniform(0.5, 20)
        reference[name], values = (_numeric(rng, i % 3, mean, std, rows) for _ in range(2))
        if name in SHIFTED:
            values = values + 0.25 * reference[name].std()
        if name in SPREAD:
            values = (values - values.mean()) * 1.3 + values.mean()
        current[name] = values
    for i, name in enumerate(CATEGORICAL):
        labels = np.array([f"{name}_v{k}" for k in range(6 + 2 * i)])
        p = 1 / np.arange(1, len(labels) + 1)
        p /= p.sum()
        q = 0.7 * p + 0.3 * p[::-1] if name in REMIXED else p
        reference[name], current[name] = labels[rng.choice(len(p), rows, p=p)], labels[rng.choice(len(p), rows, p=q)]
    return pa.table(reference), pa.table(current)


def _numeric(rng: np.random.Generator, kind: int, mean: float, std: float, rows: int) -> np.ndarray:
    if kind == 0:
        return rng.normal(mean, std, rows)
    if kind == 1:
        return np.exp(rng.normal(1, 0.5, rows)) * std
    return rng.poisson(30, rows).astype(float)


def _ours(reference: dict, current: dict) -> list[str]:
    from mlops_assets.monitoring.drift.verdict import compute_drift
    from mlops_assets.spec.drift import DriftConfig

    dtypes = {**dict.fromkeys(NUMERIC, "float"), **dict.fromkeys(CATEGORICAL, "str")}
    return compute_drift(reference, current, dtypes, DriftConfig()).drifted_features


def _scipy(reference: dict, current: dict) -> list[str]:
    """Per column, uncorrected: ks_2samp for numbers, chi2_contingency on category counts (pandas value_counts)."""
    import pandas as pd
    from scipy.stats import chi2_contingency, ks_2samp

    flagged = [c for c in NUMERIC if ks_2samp(reference[c], current[c]).pvalue < 0.05]
    for c in CATEGORICAL:
        counts = pd.concat([pd.Series(reference[c]).value_counts(), pd.Series(current[c]).value_counts()], axis=1)
        if chi2_contingency(counts.fillna(0).to_numpy().T).pvalue < 0.05:
            flagged.append(c)
    return flagged


def _evidently(reference, current) -> list[str]:
    """DataDriftPreset with its defaults; a column drifts by Evidently's own rule for its method."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    flagged = []
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            is_distance = "distance" in config["method"].lower() or "psi" in config["method"].lower()
            value, threshold = metric["value"], config["threshold"]
            if (value >= threshold) if is_distance else (value < threshold):
                flagged.append(config["column"])
    return flagged


def worker(method: str, folder: Path, repeat: int) -> None:
    """Load both windows the way the method takes them, time the method ``repeat`` times, print one JSON line."""
    if method == "evidently":
        reference, current = (pq.read_table(folder / f"{w}.parquet").to_pandas() for w in ("reference", "current"))
    else:
        reference, current = (
            {c: t.column(c).to_numpy(zero_copy_only=False) for c in t.column_names}
            for t in (pq.read_table(folder / f"{w}.parquet") for w in ("reference", "current"))
        )
        import pandas  # noqa: F401  imported before timing, as in a running pipeline
        import scipy.stats  # noqa: F401

        if method == "ours":
            import mlops_assets.monitoring.drift.verdict  # noqa: F401

    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds, loads = [], []
    for _ in range(repeat):
        loads.append(os.getloadavg()[0])
        start = time.perf_counter()
        flagged = {"ours": _ours, "scipy": _scipy, "evidently": _evidently}[method](reference, current)
        seconds.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "loaded_mib": loaded, "flagged": sorted(flagged),
                      "loads": [*loads, os.getloadavg()[0]]}))  # fmt: skip


def run(method: str, python: str, folder: Path, repeat: int) -> dict:
    command = [python, __file__, "--worker", method, "--data", str(folder), "--repeat", str(repeat)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{done.stderr[-3000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall": time.perf_counter() - start}


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({model}), {memory:.0f} GiB, Python {platform.python_version()}"


def versions(peer_python: str | None) -> str:
    import pandas
    import scipy

    ours = f"numpy {np.__version__}, scipy {scipy.__version__}, pandas {pandas.__version__}, pyarrow {pa.__version__}"
    if not peer_python:
        return ours
    code = "import evidently, pandas, numpy; print(evidently.__version__, pandas.__version__, numpy.__version__)"
    peer = subprocess.run([peer_python, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return f"{ours}; peer venv: evidently {peer[0]}, pandas {peer[1]}, numpy {peer[2]}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--peer-python", help="python of a venv with bench/peers-requirements.txt (Evidently)")
    parser.add_argument("--methods", nargs="+", default=["ours", "scipy", "evidently"])
    parser.add_argument("--repeat", type=int, default=1, help="timed calls per in-process method (median shown)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.data, args.repeat)
    print(f"{datetime.date.today()}, {machine()}\n{versions(args.peer_python)}\nload average: {os.getloadavg()}")
    methods = [m for m in args.methods if m != "evidently" or args.peer_python]
    if "evidently" in args.methods and not args.peer_python:
        print(f"Evidently skipped: create its venv with `{INSTALL}` and pass --peer-python /tmp/peers-venv/bin/python")
    labels = {
        "ours": "ours: compute_drift, DriftConfig defaults",
        "scipy": "scipy loop: ks_2samp / chi2_contingency, p < 0.05 uncorrected",
        "evidently": "Evidently 0.7.23 DataDriftPreset, defaults",
    }
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as folder:
            reference, current = generate(rows)
            pq.write_table(reference, Path(folder) / "reference.parquet")
            pq.write_table(current, Path(folder) / "current.parquet")
            print(f"\n{rows:,} rows x 55 columns per window; one window in Arrow: {current.nbytes / 2**20:.0f} MiB")
            print(f"\n{HEADER}\n|---|---|---|---|---|---|")
            notes = []
            for method in methods:
                python, repeat = (args.peer_python, 1) if method == "evidently" else (sys.executable, args.repeat)
                r = run(method, python, Path(folder), repeat)
                flagged = set(r["flagged"])
                missed = f", missed {len(DRIFTED - flagged)}" if DRIFTED - flagged else ""
                correct = "yes" if flagged == DRIFTED else f"no{missed}"
                cells = [labels[method], f"{statistics.median(r['seconds']):.2f}", f"{r['peak_mib']:.0f}"]
                cells += [str(len(flagged)), correct, str(len(flagged - DRIFTED))]
                print(f"| {' | '.join(cells)} |")
                times = ", ".join(f"{t:.2f}" for t in r["seconds"])
                loads = ", ".join(f"{x:.2f}" for x in r["loads"])
                notes.append(
                    f"- {method}: call times {times} s; 1-min load average before each call and after: {loads};"
                    f" process wall {r['wall']:.1f} s; RSS with both windows loaded {r['loaded_mib']:.0f} MiB;"
                    f" false positives: {', '.join(sorted(flagged - DRIFTED)) or 'none'}"
                )
            print("\n" + "\n".join(notes))


if __name__ == "__main__":
    main()
