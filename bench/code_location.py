"""Cost of loading the code location, which Dagster pays on every CLI call, sensor tick and daemon reload.

Each command runs in a fresh interpreter, as Dagster's subprocesses do; the table shows wall time.
Usage: python bench/code_location.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {
    "python (empty)": "pass",
    "import dagster": "import dagster",
    "load definitions.py (3 specs: 19 assets, 4 sensors)": "import definitions; definitions.defs.resolve_asset_graph()",
    "import mlflow (kept out of the location)": "import mlflow",
    "import torch (kept out of the location)": "import torch",
}


def measure(code: str, repeat: int, env: dict[str, str]) -> list[float]:
    times = []
    for _ in range(repeat + 1):  # the first run warms the page cache and .pyc files
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True)
        times.append(time.perf_counter() - start)
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    env = {**os.environ, "MLOPS_HOME": tempfile.mkdtemp()}
    print("| what | median s | min s | runs |\n|---|---|---|---|")
    for label, code in COMMANDS.items():
        times = measure(code, args.repeat, env)
        print(f"| {label} | {statistics.median(times):.2f} | {min(times):.2f} | {len(times)} |")


if __name__ == "__main__":
    main()
