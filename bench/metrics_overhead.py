"""What ``GET /metrics`` costs the request path: the endpoint with its telemetry against the same app without.

Both servers run the same app (breast_cancer's logistic regression on the compiled fast path, schema checks on,
the inference log off so that only the telemetry differs) with ``mlops-assets serve``'s server settings, each in
its own process. "without" is the app with its pre-telemetry dispatch (no wrapped ``send``, no counting); the
rounds alternate between the two so that the shared machine's load falls on both alike. The load comes from this
process over persistent loopback connections, one single-row request in flight per connection (bench/serving.py's
``load``). Each case reports the median over rounds of each round's p50, p99 and requests per second.

``--skew`` measures the training/serving skew sampling instead: three servers with their telemetry and the
inference log on (written to a temporary folder), keeping the features of no request, of one in 100 (the spec's
default ``monitoring.skew.sample_every``) and of every one.
Usage: python bench/metrics_overhead.py [--seconds 4] [--rounds 4] [--connections 1 4] [--skew]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from serving import REPO, load, machine_line, process, state_url  # bench/serving.py

SPEC = REPO / "pipelines" / "breast_cancer.yaml"
TELEMETRY_CASES = ("without", "with")  # the telemetry off and on, the inference log off
SKEW_CASES = {"none": None, "1-in-100": 100, "1-in-1": 1}  # features kept of one request in this many


def serve(case: str, state_path: str) -> None:
    from sklearn.linear_model import LogisticRegression

    from mlops_assets.data.snapshot import read_source
    from mlops_assets.model.pipeline_model import fit_pipeline_model
    from mlops_assets.serving.app import ScoringApp, create_app
    from mlops_assets.serving.http import HttpError, respond_error
    from mlops_assets.serving.inference_log import InferenceLogWriter, log_schema
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
    writer = None
    if case in SKEW_CASES:  # beside the state file, in the bench's temporary folder
        writer = InferenceLogWriter(Path(state_path).with_suffix(".log"), log_schema(dtypes, spec.task))
    rules = column_rules(spec.schema_.columns)
    app = create_app(spec.name, dtypes, lambda: model, writer, schema=rules, skew_sample_every=SKEW_CASES.get(case))
    if case == "without":
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
    parser.add_argument("--skew", action="store_true", help="measure the skew sampling instead (log on)")
    parser.add_argument("--serve", choices=[*TELEMETRY_CASES, *SKEW_CASES], help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.state)
        return
    cases = list(SKEW_CASES) if args.skew else list(TELEMETRY_CASES)
    from mlops_assets.data.snapshot import read_source
    from mlops_assets.spec import load_spec

    spec = load_spec(SPEC)
    row = read_source(spec, SPEC.parent).frame[spec.input_columns].iloc[[0]]
    body = row.to_json(orient="split", index=False).encode()
    body = json.dumps({"dataframe_split": json.loads(body)}).encode()
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(machine_line(when, ("uvicorn", "uvloop", "httptools", "orjson", "prometheus_client"), os.getloadavg()[0]))
    results: dict[tuple[str, int], list] = {}
    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        servers = {}
        for case in cases:
            state = Path(folder) / f"{case}.json"
            command = [sys.executable, __file__, "--serve", case, "--state", str(state)]
            servers[case] = stack.enter_context(process(command, Path(folder) / f"{case}.out", state_url(state)))
        for _ in range(args.rounds):
            for connections in args.connections:
                for case in cases:
                    measured, _ = load(servers[case], body, connections, 10**9, args.seconds)
                    results.setdefault((case, connections), []).append(measured)
    print(f"1-minute load average after: {os.getloadavg()[0]:.2f}")
    varied = "features kept" if args.skew else "telemetry"
    print(f"| {varied} | connections | p50 ms | p99 ms | requests/s | server CPU ms/request |")
    print("|---|---|---|---|---|---|")
    for connections in args.connections:
        for case in cases:
            runs = results[(case, connections)]
            figures = [statistics.median(getattr(m, f) for m in runs) for f in ("p50", "p99", "per_second")]
            cpu = statistics.median(m.cpu_ms_per_request for m in runs)
            print(f"| {case} | {connections} | {figures[0]:.3f} | {figures[1]:.3f} | {figures[2]:,.0f} | {cpu:.3f} |")


if __name__ == "__main__":
    main()
