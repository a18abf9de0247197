"""What ``GET /metrics`` costs the request path: the endpoint with its telemetry against the same app without.

Both servers run the same app (breast_cancer's logistic regression on the compiled fast path, schema checks on,
the inference log off so that only the telemetry differs) with ``mlops-assets serve``'s server settings, each in
its own process. "without" is the app with its pre-telemetry dispatch (no wrapped ``send``, no counting); the
rounds alternate between the two so that the shared machine's load falls on both alike. The load comes from this
process over persistent loopback connections, one single-row request in flight per connection (bench/serving.py's
``load``). Each case reports the median over rounds of each round's p50, p99 and requests per second.
Usage: python bench/metrics_overhead.py [--seconds 4] [--rounds 4] [--connections 1 4]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from serving import REPO, load, machine_line, process, state_url  # bench/serving.py

SPEC = REPO / "pipelines" / "breast_cancer.yaml"


def serve(telemetry: bool, state_path: str) -> None:
    from sklearn.linear_model import LogisticRegression

    from mlops_assets.data.snapshot import read_source
    from mlops_assets.model.pipeline_model import fit_pipeline_model
    from mlops_assets.serving.app import ScoringApp, create_app
    from mlops_assets.serving.http import HttpError, respond_error
    from mlops_assets.serving.loading import LoadedModel, with_fast_path
    from mlops_assets.serving.row_checks import column_rules
    from mlops_assets.serving.run import bind, run
    from mlops_assets.spec import load_spec

    class WithoutTelemetry(ScoringApp):
        async def __call__(self, scope, receive, send):  # the dispatch as it was before the telemetry
            if scope["type"] == "lifespan":
                await self._lifespan(receive, send)
                return
            method, handler = self._routes.get(scope["path"], (None, None))
            try:
                if handler is None or scope["method"] != method:
                    raise HttpError(404, "no route")
                await handler(scope, receive, send)
            except HttpError as exc:
                await respond_error(send, exc.status, str(exc), exc.close)

    spec = load_spec(SPEC)
    data = read_source(spec, SPEC.parent).frame
    model = LoadedModel("1", fit_pipeline_model(spec, data, LogisticRegression(max_iter=1000)))
    holdout = {c: data[c].to_numpy() for c in spec.input_columns}
    model = with_fast_path(model, holdout, spec.deployment.fast_path_tolerance)
    dtypes = {c: spec.schema_.columns[c].dtype for c in spec.input_columns}
    app = create_app(spec.name, dtypes, lambda: model, schema=column_rules(spec.schema_.columns))
    if not telemetry:
        app.__class__ = WithoutTelemetry
        app.telemetry.scored = lambda *_: None
    sock = bind("127.0.0.1", 0)
    Path(state_path).write_text(json.dumps({"url": f"http://127.0.0.1:{sock.getsockname()[1]}"}))
    run(app, sock)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--serve", choices=["with", "without"], help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve == "with", args.state)
        return
    from mlops_assets.data.snapshot import read_source
    from mlops_assets.spec import load_spec

    spec = load_spec(SPEC)
    row = read_source(spec, SPEC.parent).frame[spec.input_columns].iloc[[0]]
    body = row.to_json(orient="split", index=False).encode()
    body = json.dumps({"dataframe_split": json.loads(body)}).encode()
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(machine_line(when, ("uvicorn", "uvloop", "httptools", "orjson", "prometheus_client"), os.getloadavg()[0]))
    results: dict[tuple[str, int], list] = {}
    with tempfile.TemporaryDirectory() as folder:
        servers = {}
        for case in ("with", "without"):
            state = Path(folder) / f"{case}.json"
            command = [sys.executable, __file__, "--serve", case, "--state", str(state)]
            servers[case] = process(command, Path(folder) / f"{case}.log", state_url(state))
        with servers["with"] as with_server, servers["without"] as without_server:
            for _ in range(args.rounds):
                for connections in args.connections:
                    for case, server in (("without", without_server), ("with", with_server)):
                        measured, _ = load(server, body, connections, 10**9, args.seconds)
                        results.setdefault((case, connections), []).append(measured)
    print(f"1-minute load average after: {os.getloadavg()[0]:.2f}")
    print("| telemetry | connections | p50 ms | p99 ms | requests/s | server CPU ms/request |")
    print("|---|---|---|---|---|---|")
    for connections in args.connections:
        for case in ("without", "with"):
            runs = results[(case, connections)]
            figures = [statistics.median(getattr(m, f) for m in runs) for f in ("p50", "p99", "per_second")]
            cpu = statistics.median(m.cpu_ms_per_request for m in runs)
            print(f"| {case} | {connections} | {figures[0]:.3f} | {figures[1]:.3f} | {figures[2]:,.0f} | {cpu:.3f} |")


if __name__ == "__main__":
    main()
