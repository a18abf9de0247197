"""Cost of the portfolio over many pipelines: loading the code location, then one materialization of ``portfolio``.

N copies of the bundled breast_cancer spec (half of them with SLOs) in a temporary folder, their state seeded
directly, as the assets would leave it: two registered versions each in a SQLite MLflow store (champion and
challenger, no model files: the portfolio never loads one), a trail of earlier refused retrainings, a
registration, a gate verdict and a decision (every fifth one waiting for an approval), twenty drift reports,
SLO check evaluations in a SQLite Dagster instance, and the endpoints' state files: a third answer (a real HTTP
server on 127.0.0.1), a third refuse connections, a third accept and never answer.
Usage: python bench/portfolio.py [--specs N] [--repeat N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.server
import json
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import dagster as dg
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mlops_assets.definitions.folder import build_definitions  # noqa: E402
from mlops_assets.governance.audit import append_event  # noqa: E402
from mlops_assets.local.layout import LocalLayout  # noqa: E402
from mlops_assets.naming import CHALLENGER, CHAMPION, PORTFOLIO, StorePrefix, TrailEvent, asset_keys, store_key  # noqa: E402
from mlops_assets.resources import local_resources  # noqa: E402
from mlops_assets.sensors import build_sensors  # noqa: E402
from mlops_assets.serving.endpoint_state import state_file, write_state  # noqa: E402

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
EARLIER_TRIGGERS = 30  # trail records older than the newest training: what a bounded read skips
DRIFT_REPORTS = 20


def write_specs(folder: Path, count: int) -> list[str]:
    shutil.copytree(REPO / "pipelines" / "data", folder / "data")
    raw = yaml.safe_load((REPO / "pipelines" / "breast_cancer.yaml").read_text())
    names = []
    for n in range(count):
        spec = {**raw, "name": f"bc_{n:03d}"}
        if n % 2 == 0:
            spec["monitoring"] = {**raw["monitoring"], "slo": {"latency_p99_ms": 50, "max_error_rate": 0.01}}
        (folder / f"bc_{n:03d}.yaml").write_text(yaml.safe_dump(spec))
        names.append(spec["name"])
    return names


class Ping(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def endpoints() -> tuple[str, str, str, list]:
    """URLs that answer, refuse, and accept without answering; the objects to keep alive meanwhile."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ping)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1024)  # the kernel accepts into the backlog; nobody reads
    url = "http://127.0.0.1:{}".format
    return (
        url(server.server_port),
        url(refused.getsockname()[1]),
        url(silent.getsockname()[1]),
        [server, refused, silent],
    )


def seed(names: list[str], layout: LocalLayout, instance: dg.DagsterInstance, urls: tuple[str, str, str]) -> None:
    from mlflow import MlflowClient

    resources = local_resources(layout)
    store = resources.store
    client = MlflowClient(tracking_uri=layout.tracking_uri, registry_uri=layout.tracking_uri)
    now = dt.datetime.now(dt.UTC)
    for n, name in enumerate(names):
        client.create_registered_model(name)
        for version, trigger in (("1", "manual"), ("2", f"drift_report:run{n}")):
            client.create_model_version(name, f"file:///nonexistent/{name}/{version}", tags={"trigger": trigger})
        deployed = (now - dt.timedelta(days=n % 9, hours=n % 7)).isoformat(timespec="seconds")
        client.set_model_version_tag(name, "1", "deployed_at", deployed)
        client.set_registered_model_alias(name, CHAMPION, "1")
        client.set_registered_model_alias(name, CHALLENGER, "2")
        for k in range(EARLIER_TRIGGERS):
            append_event(store, name, TrailEvent.trigger, {"trigger": f"t{k}", "outcome": "not retrained"})
        append_event(store, name, TrailEvent.registration, {"model_version": "2", "trigger": f"drift_report:run{n}"})
        passed = n % 3 != 0
        gate = {"model_version": "2", "passed": passed, "reasons": [] if passed else ["roc_auc 0.91 < 0.95"]}
        append_event(store, name, TrailEvent.gate, gate)
        action = "awaiting approval" if n % 5 == 0 and passed else "redeploy"
        append_event(store, name, TrailEvent.decision, {"action": action, "challenger_version": "2"})
        for k in range(DRIFT_REPORTS):
            stamp = (now - dt.timedelta(minutes=DRIFT_REPORTS - k)).strftime("%Y%m%dT%H%M%S.%fZ")
            report = {"status": "drifted" if n % 4 == 0 else "no drift", "drifted_features": []}
            store.write_bytes(
                store_key(name, StorePrefix.drift_reports, f"{stamp}-r{k}.json"), json.dumps(report).encode()
            )
        if n % 2 == 0:
            for check, passed in (("latency_slo", n % 6 != 0), ("error_rate_slo", True)):
                evaluation = dg.AssetCheckEvaluation(
                    asset_key=asset_keys(name)["deployed_endpoint"], check_name=check, passed=passed
                )
                instance.report_runless_asset_event(evaluation)
        url = urls[n % 3]
        write_state(state_file(layout.endpoints, name), {"url": url, "pid": 1, "spec": "x", "log_dir": "x"})


def timed(fn, repeat: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--specs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp())
    layout = LocalLayout(home).ensure()
    names = write_specs(home / "pipelines", args.specs)
    answering, refusing, silent, keep = endpoints()
    (home / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(home / "dagster")) as instance:
        started = time.perf_counter()
        seed(names, layout, instance, (answering, refusing, silent))
        seeded = time.perf_counter() - started
        resources = local_resources(layout)

        def load():
            return build_definitions(home / "pipelines", resources, build_sensors)

        def materialize():
            result = dg.materialize(
                [portfolio], resources=resources.by_key(), instance=instance, run_config=QUIET, raise_on_error=True
            )
            return result.asset_materializations_for_node(PORTFOLIO)[0].metadata

        load_times, defs = timed(load, args.repeat)
        portfolio = next(a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and a.key.path == [PORTFOLIO])
        run_times, metadata = timed(materialize, args.repeat)
    totals = [a + b for a, b in zip(load_times, run_times, strict=True)]
    print(f"{args.specs} specs, state seeded in {seeded:.0f} s (not timed below); {len(keep)} endpoint kinds\n")
    print("| what | median s | min s | max s | runs |\n|---|---|---|---|---|")
    for label, times in (
        (f"build_definitions ({args.specs} specs, sensors)", load_times),
        ("one portfolio materialization", run_times),
        ("both", totals),
    ):
        print(f"| {label} | {statistics.median(times):.2f} | {min(times):.2f} | {max(times):.2f} | {len(times)} |")
    values = {k: getattr(v, "value", v) for k, v in metadata.items() if k not in ("portfolio", "html", "markdown")}
    print(f"\nlast materialization: {values}; its Markdown begins:\n")
    print("\n".join(metadata["portfolio"].value.splitlines()[:14]))
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
