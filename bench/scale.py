"""Many pipelines in one code location: load time, sensor ticks and the UI's asset graph query.

Writes ``--specs`` specs (default 100) into a temporary folder, renamed copies of the bundled examples in the
proportions of ``--mix`` (default two breast_cancer, one diabetes, one wine: 800 assets and 300 sensors at 100
specs), beside a link to the bundled data, then measures, with ``MLOPS_PIPELINES`` pointing at that folder:

- load: the whole process a Dagster CLI call, the daemon or a code server pays, ``import definitions`` and
  ``resolve_asset_graph()`` in a fresh interpreter, for one breast_cancer spec and for all of them
  (``--repeat`` runs after one warm-up; median and min; assets, asset checks and sensors counted);
- ticks: every sensor evaluated once through Dagster's API (``SensorDriver.tick``, as ``mlops-assets tick``
  does) against an empty ``MLOPS_HOME`` and a test instance, in one process after the location is loaded;
  the slowest tick, the median and the total;
- graph: ``dagster-webserver -w workspace.yaml`` on 127.0.0.1 with a temporary ``DAGSTER_HOME``; once the
  code location has loaded, ``--queries`` POSTs of the asset graph query to ``/graphql``, each timed.

``--repo`` measures another checkout (e.g. a worktree of an older commit) with this script, for before/after.
Usage: python bench/scale.py [--specs 100] [--mix breast_cancer:2,diabetes:1,wine:1] [--repeat 5] [--repo DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from serving import machine_line

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("dagster", "dagster-webserver", "pydantic", "PyYAML")
GRAPH_QUERY = "{ assetNodes { assetKey { path } dependencyKeys { path } } }"
LOAD_CODE = """
import json, definitions
defs = definitions.defs
graph = defs.resolve_asset_graph()
print(json.dumps({"assets": len(graph.get_all_asset_keys()), "checks": len(graph.asset_check_keys),
                  "sensors": len(defs.sensors)}))
"""
SERVER_START_S = 180.0  # the most the webserver and its code server may take to serve the graph
QUERY_TIMEOUT_S = 60.0
STOP_S = 20.0  # after SIGTERM, before SIGKILL


def write_specs(folder: Path, count: int, mix: list[tuple[str, int]]) -> dict[str, int]:
    """``count`` renamed copies of the bundled specs, cycling through ``mix``; how many of each."""
    folder.mkdir(parents=True)
    (folder / "data").symlink_to(REPO / "pipelines" / "data", target_is_directory=True)
    cycle = [stem for stem, weight in mix for _ in range(weight)]
    made: dict[str, int] = {}
    for i in range(count):
        stem = cycle[i % len(cycle)]
        text = (REPO / "pipelines" / f"{stem}.yaml").read_text()
        name = f"{stem}_{i:03d}"
        renamed, found = re.subn(r"(?m)^name: .*$", f"name: {name}", text)
        assert found == 1, f"{stem}.yaml has no single top-level name"
        (folder / f"{name}.yaml").write_text(renamed)
        made[stem] = made.get(stem, 0) + 1
    return made


def load_times(repo: Path, env: dict[str, str], repeat: int) -> tuple[list[float], dict[str, int]]:
    """Wall seconds of fresh interpreters loading the location (after one warm-up), and what it holds."""
    times, counts = [], {}
    for run in range(repeat + 1):  # the first run warms the page cache and .pyc files
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", LOAD_CODE], cwd=repo, env=env, capture_output=True, text=True, timeout=300
        )
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"loading the code location failed:\n{done.stderr[-3000:]}")
        counts = json.loads(done.stdout.strip().splitlines()[-1])
        if run:
            times.append(elapsed)
    return times, counts


def tick_all() -> None:
    """Worker (run with the checkout as working directory): load the location, tick each sensor once, print
    the seconds per sensor as JSON."""
    sys.path.insert(0, os.getcwd())  # the measured checkout's packages, not this script's folder's
    import dagster as dg

    import definitions
    from mlops_assets.local.layout import LocalLayout
    from mlops_assets.local.tick import SensorDriver
    from mlops_assets.resources import local_resources

    with dg.instance_for_test() as instance:
        driver = SensorDriver(definitions.defs, instance, local_resources(LocalLayout.from_env().ensure()).by_key())
        seconds = {}
        for name in driver.sensors:
            start = time.perf_counter()
            driver.tick(name)
            seconds[name] = time.perf_counter() - start
    print(json.dumps(seconds))


def tick_times(repo: Path, env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--tick-worker"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise SystemExit(f"ticking the sensors failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post_graph_query(url: str) -> list[dict]:
    request = urllib.request.Request(
        url, data=json.dumps({"query": GRAPH_QUERY}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=QUERY_TIMEOUT_S) as response:
        body = json.loads(response.read())
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return body["data"]["assetNodes"]


def graph_query_times(repo: Path, env: dict[str, str], expected: int, queries: int) -> tuple[float, list[float], int]:
    """Seconds from starting ``dagster-webserver`` until it serves the whole graph, the seconds of each
    following query, and the nodes the last one returned."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/graphql"
    command = [str(Path(sys.executable).with_name("dagster-webserver")), "-w", "workspace.yaml"]
    with tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        server = subprocess.Popen(
            [*command, "-h", "127.0.0.1", "-p", str(port)],
            cwd=repo,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its code server is its child: one group to stop
        )
        try:
            nodes: list[dict] = []
            while len(nodes) < expected:  # an empty or partial graph while the location is still loading
                if server.poll() is not None or time.perf_counter() - start > SERVER_START_S:
                    log.seek(0)
                    raise SystemExit(f"the webserver did not serve the graph:\n{log.read().decode()[-3000:]}")
                try:
                    nodes = post_graph_query(url)
                except (urllib.error.URLError, ConnectionError, RuntimeError, TimeoutError):
                    time.sleep(0.2)
            ready = time.perf_counter() - start
            times = []
            for _ in range(queries):
                query_start = time.perf_counter()
                nodes = post_graph_query(url)
                times.append(time.perf_counter() - query_start)
            return ready, times, len(nodes)
        finally:
            stop(server)


def stop(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (the webserver and its code server), SIGKILL if it lingers."""
    with contextlib.suppress(ProcessLookupError):  # the whole group already gone
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
    server.wait(timeout=STOP_S)


def load() -> float:
    return os.getloadavg()[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--specs", type=int, default=100)
    parser.add_argument("--mix", default="breast_cancer:2,diabetes:1,wine:1", help="bundled spec:weight,...")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--queries", type=int, default=5)
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose code location is measured")
    parser.add_argument("--tick-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tick_worker:
        return tick_all()
    mix = [(stem, int(weight)) for stem, _, weight in (part.partition(":") for part in args.mix.split(","))]
    repo = args.repo.resolve()
    work = Path(tempfile.mkdtemp(prefix="mlops-scale-"))
    try:
        print(machine_line(f"{dt.datetime.now():%Y-%m-%d %H:%M}", PACKAGES, load()), flush=True)
        made = write_specs(work / "many", args.specs, mix)
        write_specs(work / "one", 1, [("breast_cancer", 1)])
        print(f"checkout: {repo}; specs: {made}", flush=True)
        (work / "dagster_home").mkdir()
        (work / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")

        def env(folder: str) -> dict[str, str]:
            home = work / f"mlops_home_{folder}"
            return {**os.environ, "MLOPS_PIPELINES": str(work / folder), "MLOPS_HOME": str(home),
                    "DAGSTER_HOME": str(work / "dagster_home")}  # fmt: skip

        rows = []
        loads = {}
        for folder in ("one", "many"):
            before = load()
            times, counts = load_times(repo, env(folder), args.repeat)
            loads[folder] = statistics.median(times)
            what = f"{counts['assets']} assets, {counts['checks']} checks, {counts['sensors']} sensors"
            label = f"load the code location, {1 if folder == 'one' else args.specs} spec(s): {what}"
            rows.append((label, statistics.median(times), min(times), max(times), len(times), before))
        before = load()
        ticks = tick_times(repo, env("many"))
        slowest = max(ticks, key=ticks.get)
        rows.append((f"tick one sensor (median of {len(ticks)})", statistics.median(ticks.values()),
                     min(ticks.values()), ticks[slowest], len(ticks), before))  # fmt: skip
        rows.append((f"tick all {len(ticks)} sensors, one after another", sum(ticks.values()), None, None, 1, before))
        before = load()
        ready, query_times, nodes = graph_query_times(repo, env("many"), counts["assets"], args.queries)
        rows.append((f"webserver started until it serves all {nodes} asset nodes", ready, None, None, 1, before))
        rows.append((f"GraphQL `assetNodes` ({nodes} nodes, with dependencies)", statistics.median(query_times),
                     min(query_times), max(query_times), len(query_times), before))  # fmt: skip

        print("\n| what | median s | min s | max s | runs | load before |\n|---|---|---|---|---|---|")
        for label, median, low, high, runs, before in rows:
            cells = [f"{v:.3f}" if v is not None else "" for v in (median, low, high)]
            print(f"| {label} | {' | '.join(cells)} | {runs} | {before:.2f} |")
        ratio = loads["many"] / loads["one"]
        print(
            f"\ngoals: load of {args.specs} specs {loads['many']:.2f} s (< 5 s: {loads['many'] < 5}), "
            f"{ratio:.2f}x one spec's (< 2x: {ratio < 2}); slowest tick {ticks[slowest]:.3f} s, {slowest} "
            f"(< 1 s: {ticks[slowest] < 1}); assetNodes median {statistics.median(query_times):.3f} s "
            f"(< 2 s: {statistics.median(query_times) < 2}); 1-minute load average after: {load():.2f}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
