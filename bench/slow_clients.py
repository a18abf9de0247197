"""Slow clients against the endpoint: are they cut off, and is everyone else served as before?

The endpoint (``create_app`` + ``run``, the settings ``mlops-assets serve`` uses) serves the bundled
breast-cancer model (LogisticRegression, C=0.5, fitted in the server process) in a process of its own. One
keep-alive client sends single-row ``dataframe_split`` requests back to back, first alone, then while
``--attackers`` connections send a request head a byte at a time and as many send a body a byte at a time
(one byte every ``--drip-ms``), each reconnecting as soon as the server closes it. Printed: latency and
throughput of the normal client in both phases, and how many slow connections the server closed and after
how long.
Usage: python bench/slow_clients.py [--seconds 20] [--attackers 20] [--head-timeout 10] [--body-timeout 30]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def serve(port_file: str, head_timeout_s: float, body_timeout_s: float) -> None:
    from sklearn.linear_model import LogisticRegression

    from mlops_assets.data.snapshot import read_source
    from mlops_assets.model.pipeline_model import fit_pipeline_model
    from mlops_assets.serving.app import LoadedModel, create_app
    from mlops_assets.serving.row_checks import column_rules
    from mlops_assets.serving.run import bind, run
    from mlops_assets.spec import load_spec

    spec = load_spec(REPO / "pipelines" / "breast_cancer.yaml")
    model = fit_pipeline_model(spec, read_source(spec, REPO / "pipelines").frame, LogisticRegression(C=0.5))
    loaded = LoadedModel("1", model)
    dtypes = {c: spec.schema_.columns[c].dtype for c in spec.input_columns}
    app = create_app(
        spec.name,
        dtypes,
        lambda: loaded,
        id_column=spec.id_column,
        schema=column_rules(spec.schema_.columns),
        head_timeout_s=head_timeout_s,
        body_timeout_s=body_timeout_s,
    )
    sock = bind("127.0.0.1", 0)
    Path(port_file).write_text(str(sock.getsockname()[1]))
    run(app, sock)


def request_body() -> bytes:
    import pandas as pd

    frame = pd.read_csv(REPO / "pipelines" / "data" / "breast_cancer" / "features.csv").head(1)
    return json.dumps({"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}}).encode()


def normal_client(port: int, body: bytes, seconds: float) -> list[float]:
    """Latencies (ms) of back-to-back requests on one keep-alive connection; every answer must be a 200."""
    request = f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    latencies = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter_ns()
            sock.sendall(request)
            answer = b""
            while b"}" not in answer:
                answer += sock.recv(65536)
            if not answer.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"a normal request got {answer[:60]!r}")
            latencies.append((time.perf_counter_ns() - started) / 1e6)
    return latencies


def attacker(port: int, head: bytes, drip: bytes, drip_s: float, stop: threading.Event, lives: list) -> None:
    """Connect, send ``head``, drip ``drip`` until the server closes; again until ``stop``. ``lives`` gets how
    long each connection lasted and whether the server closed it."""
    while not stop.is_set():
        opened = time.monotonic()
        closed = False
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(head)
            for byte in drip:
                if stop.is_set():
                    break
                if select.select([sock], [], [], drip_s)[0]:
                    try:
                        if not sock.recv(65536):
                            closed = True
                            break
                        continue
                    except ConnectionResetError:
                        closed = True
                        break
                try:
                    sock.sendall(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
        lives.append((time.monotonic() - opened, closed))


def summary(latencies: list[float], seconds: float) -> str:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered):.3f} ms, p99 {p99:.3f} ms, {len(ordered) / seconds:,.0f} requests/s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0, help="each phase")
    parser.add_argument("--attackers", type=int, default=20, help="slow-head connections, and as many slow-body")
    parser.add_argument("--drip-ms", type=float, default=100.0)
    parser.add_argument("--head-timeout", type=float, default=10.0)
    parser.add_argument("--body-timeout", type=float, default=30.0)
    parser.add_argument("--serve", nargs=3, metavar=("PORT_FILE", "HEAD_TIMEOUT", "BODY_TIMEOUT"))
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], float(args.serve[1]), float(args.serve[2]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        command = [sys.executable, __file__, "--serve", str(port_file), str(args.head_timeout), str(args.body_timeout)]
        server = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            while not port_file.exists() or not port_file.read_text():
                time.sleep(0.1)
            port, body = int(port_file.read_text()), request_body()
            time.sleep(1.0)  # the model loads at startup
            normal_client(port, body, 2.0)  # warm-up
            alone = normal_client(port, body, args.seconds)
            stop, lives = threading.Event(), []
            slow_head = b"POST /invocations HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100_000
            slow_body = f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            threads = [
                threading.Thread(target=attacker, args=(port, head, drip, args.drip_ms / 1000, stop, lives))
                for head, drip in [(b"", slow_head), (slow_body, body)]
                for _ in range(args.attackers)
            ]
            for thread in threads:
                thread.start()
            attacked = normal_client(port, body, args.seconds)
            stop.set()
            for thread in threads:
                thread.join()
        finally:
            server.terminate()
            server.wait(20)
    closed = [seconds for seconds, by_server in lives if by_server]
    still_open = [seconds for seconds, by_server in lives if not by_server]
    print(f"head timeout {args.head_timeout:g} s, body timeout {args.body_timeout:g} s, {os.cpu_count()} cores")
    print(f"normal client alone:        {summary(alone, args.seconds)}")
    print(f"normal client under attack: {summary(attacked, args.seconds)}")
    print(
        f"slow connections: {len(lives)} opened, {len(closed)} closed by the server"
        + (f" after {min(closed):.1f} to {max(closed):.1f} s" if closed else "")
        + f"; {len(still_open)} still open when the attack stopped"
        + (f" (the oldest {max(still_open):.1f} s old)" if still_open else "")
    )


if __name__ == "__main__":
    main()
