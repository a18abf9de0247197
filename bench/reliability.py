"""Reliability of the real endpoint under model swaps: no failed and no wrong-version answer.

One run registers four versions of the breast_cancer pipeline in a temporary MLflow SQLite store, starts
``mlops-assets serve`` (the real CLI, inference log on, ``MLOPS_ADMIN_TOKEN`` set) and keeps ``--clients``
persistent loopback connections busy, one request in flight each, while the champion is swapped ``--swaps``
times (the registry's ``champion`` alias moved, then ``POST /admin/reload``) and ``--canaries`` canaries are
rolled back (``POST /admin/rollout`` with a share of 0.5, then ``POST /admin/rollout/end``), the admin calls
spread evenly over ``--seconds``.

The four versions answer differently, so a wrong version shows in the body: 1 is the pipeline's model, 2 the
same trained on flipped labels, 3 and 4 are regularised until they answer benign (3) or malignant (4) for
every row. Requests are single rows, and after every third a row of each kind (which tells all four apart).
Every answer is checked twice: its body must be what the version in its ``x-model-version`` header answers
(computed in this process from the registered models), and that version must have been serving while the
request was in flight (from the times the admin calls were sent and answered).
Usage: python bench/reliability.py [--seconds 40] [--clients 8] [--swaps 20] [--canaries 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import math
import os
import random
import secrets
import selectors
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from serving import (  # as every bench starts and registers
    Connection,
    log_holdout_inputs,
    machine_line,
    process,
    state_url,
)

REPO = Path(__file__).resolve().parents[1]
SPEC_PATH = REPO / "pipelines" / "breast_cancer.yaml"
PACKAGES = ("mlflow", "scikit-learn", "uvicorn", "uvloop", "httptools")
ANSWER_TIMEOUT_NS = 10 * 10**9  # a request unanswered this long counts as a connection error


@dataclass(frozen=True)
class Payload:
    request: bytes  # the whole HTTP request
    expected: dict[str, list]  # version -> its predictions for these rows


@dataclass(frozen=True)
class Answer:
    sent_ns: int  # time.monotonic_ns() before the request was written
    received_ns: int  # once the whole response was read
    status: int  # 0: the connection failed or the answer timed out
    version: str | None  # the x-model-version header
    wrong: bool  # the body is not what ``version`` answers for the rows sent

    @property
    def latency_ms(self) -> float:
        return (self.received_ns - self.sent_ns) / 1e6


@dataclass(frozen=True)
class Change:
    """An admin call, sent at ``started_ns`` and answered at ``ended_ns``; ``serving``: the versions that may
    answer once it took effect."""

    what: str
    started_ns: int
    ended_ns: int
    serving: frozenset[str]


def register_versions(tracking_uri: str, artifact_root: Path) -> dict[str, object]:
    """Fit and register the four versions; ``champion`` points at version 1. Returns each version's model as
    loaded back from the registry, as the server loads it."""
    import mlflow
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    from mlops_assets.data.snapshot import read_source
    from mlops_assets.model.pipeline_model import fit_pipeline_model
    from mlops_assets.model.pyfunc import log_pipeline_model
    from mlops_assets.model.registry import MlflowRegistryClient
    from mlops_assets.spec import load_spec

    spec = load_spec(SPEC_PATH)
    frame = read_source(spec, SPEC_PATH.parent).frame
    flipped = frame.assign(**{spec.target: frame[spec.target].map({"benign": "malignant", "malignant": "benign"})})
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment = client.create_experiment(spec.name, artifact_location=str(artifact_root))
    mlflow.set_tracking_uri(tracking_uri)
    models = {}
    for data, C in ((frame, 0.5), (flipped, 0.5), (frame, 1e-6), (flipped, 1e-6)):
        model = fit_pipeline_model(spec, data, LogisticRegression(C=C, max_iter=1000))
        with mlflow.start_run(experiment_id=experiment) as run:
            registered = str(log_pipeline_model(model, spec, frame).registered_model_version)
        log_holdout_inputs(tracking_uri, artifact_root, run.info.run_id, frame[spec.input_columns])  # fast path
        models[registered] = MlflowRegistryClient(tracking_uri).load(spec.name, registered)
    client.set_registered_model_alias(spec.name, "champion", min(models, key=int))
    return models


def payloads(models: dict[str, object], port: int) -> list[Payload]:
    """Single rows, and after every third a row of each kind as the first version calls them."""
    from mlops_assets.data.snapshot import read_source
    from mlops_assets.spec import load_spec

    spec = load_spec(SPEC_PATH)
    frame = read_source(spec, SPEC_PATH.parent).frame[spec.input_columns].iloc[:60]
    malignant = models[min(models, key=int)].predict(frame).labels == "malignant"
    pairs = list(zip(frame.index[malignant], frame.index[~malignant], strict=False))
    if not pairs:
        raise RuntimeError("version 1 gives the first 60 rows one answer: the requests cannot tell versions apart")
    chosen = []
    for i, row in enumerate(frame.index):
        chosen.append([row])
        if i % 3 == 2:
            chosen.append(list(pairs[i // 3 % len(pairs)]))
    result = []
    for rows in chosen:
        sample = frame.loc[rows]
        body = json.dumps({"dataframe_split": {"columns": list(sample.columns), "data": sample.to_numpy().tolist()}})
        head = (
            f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        expected = {v: model.predict(sample).labels.tolist() for v, model in models.items()}
        result.append(Payload((head + body).encode(), expected))
    for a, b in itertools.combinations(models, 2):
        if not all(p.expected[a] != p.expected[b] for p in result if len(p.expected[a]) == 2):
            raise RuntimeError(f"versions {a} and {b} give the same answer to a request of two rows")
    return result


class _Connection(Connection):
    """A connection that cycles through the payloads and checks every answer."""

    def __init__(self, port: int, payloads: list[Payload], offset: int):
        super().__init__(port, payloads[0].request)
        self.payloads, self.next, self.payload = payloads, offset, payloads[0]

    def send(self) -> None:
        self.payload = self.payloads[self.next % len(self.payloads)]
        self.next += 1
        self.request = self.payload.request
        super().send()
        self.sent_ns = time.monotonic_ns()  # the admin calls' times are monotonic too

    def check(self) -> Answer | None:
        """The checked answer once the response is complete, else ``None``."""
        response = self.receive_response()
        if response is None:
            return None
        version = response.headers.get("x-model-version")
        try:
            predictions = json.loads(response.body)["predictions"]
        except (ValueError, KeyError, TypeError):
            predictions = None
        wrong = response.status != 200 or predictions != self.payload.expected.get(version)
        return Answer(self.sent_ns, time.monotonic_ns(), response.status, version, wrong)

    def failed(self) -> Answer:
        return Answer(self.sent_ns, time.monotonic_ns(), 0, None, True)


class Clients(threading.Thread):
    """``count`` connections served by one thread (a selector), each sending again as soon as it is answered;
    a connection that fails is recorded and replaced."""

    def __init__(self, port: int, payloads: list[Payload], count: int):
        super().__init__(daemon=True)
        self.port, self.payloads, self.count = port, payloads, count
        self.answers: list[Answer] = []
        self.stop = threading.Event()

    def run(self) -> None:
        selector = selectors.DefaultSelector()

        def connect(offset: int) -> None:
            connection = _Connection(self.port, self.payloads, offset)
            selector.register(connection.sock, selectors.EVENT_READ, connection)
            connection.send()

        def replace(connection: _Connection) -> None:
            self.answers.append(connection.failed())
            selector.unregister(connection.sock)
            connection.sock.close()
            connect(connection.next)

        for i in range(self.count):
            connect(i * 7)
        while not self.stop.is_set():
            for key, _ in selector.select(timeout=0.5):
                connection = key.data
                try:
                    answer = connection.check()
                    if answer is not None:
                        self.answers.append(answer)
                        connection.send()
                except OSError:
                    replace(connection)
            now = time.monotonic_ns()
            for key in list(selector.get_map().values()):
                if now - key.data.sent_ns > ANSWER_TIMEOUT_NS:
                    replace(key.data)
        for key in list(selector.get_map().values()):
            key.data.sock.close()


def admin(url: str, token: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{url}{path}",
        data=json.dumps(body or {}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def may_answer(changes: list[Change], answer: Answer) -> frozenset[str]:
    """A change takes effect between its call's send and answer, so what it set may answer from the send of
    that call to the answer of the next one."""
    following = [*changes[1:], Change("", math.inf, math.inf, frozenset())]
    return frozenset().union(
        *(
            c.serving
            for c, n in zip(changes, following, strict=True)
            if c.started_ns <= answer.received_ns and n.ended_ns >= answer.sent_ns
        )
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else math.nan


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=40.0, help="time over which the admin calls are spread")
    parser.add_argument("--clients", type=int, default=8, help="connections, one request in flight each")
    parser.add_argument("--swaps", type=int, default=20)
    parser.add_argument("--canaries", type=int, default=5, help="canaries, each rolled back")
    parser.add_argument("--workers", type=int, default=1, help="the endpoint's worker processes (serve --workers)")
    args = parser.parse_args()

    print(machine_line(f"{dt.datetime.now():%Y-%m-%d %H:%M}", PACKAGES, os.getloadavg()[0]), flush=True)
    pick = random.Random(0)
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="bench-reliability-") as tmp:
        folder = Path(tmp)
        tracking_uri = f"sqlite:///{folder / 'mlflow.db'}"
        models = register_versions(tracking_uri, folder / "artifacts")
        from mlflow import MlflowClient

        registry = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        state = folder / "endpoint.json"
        serve = [sys.executable, "-m", "mlops_assets.cli", "serve", str(SPEC_PATH), "--tracking-uri", tracking_uri]
        serve += ["--log-dir", str(folder / "log"), "--host", "127.0.0.1", "--port", "0", "--state-file", str(state)]
        serve += ["--workers", str(args.workers)]
        env = {**os.environ, "MLOPS_ADMIN_TOKEN": token}
        with process(serve, folder / "endpoint.log", state_url(state), env=env) as server:
            port = int(server.url.rsplit(":", 1)[1])
            clients = Clients(port, payloads(models, port), args.clients)
            champion = min(models, key=int)
            changes = [Change("start", -1, -1, frozenset({champion}))]
            rollbacks: list[int] = []  # index in ``changes`` of each rollout/end

            def call(what: str, path: str, body: dict | None, serving: set[str]) -> dict:
                started = time.monotonic_ns()
                status, answer = admin(server.url, token, path, body)
                changes.append(Change(what, started, time.monotonic_ns(), frozenset(serving)))
                if status != 200:
                    raise RuntimeError(f"{path} answered {status}: {answer}")
                return answer

            clients.start()
            while len(clients.answers) < 10 * args.clients:
                time.sleep(0.01)
            calls = args.swaps + 2 * args.canaries
            every = max(1, args.swaps // max(1, args.canaries))
            started = time.monotonic()

            def wait_turn() -> None:
                time.sleep(max(0.0, started + (len(changes) - 1) * args.seconds / calls - time.monotonic()))

            for swap in range(1, args.swaps + 1):
                wait_turn()
                champion = pick.choice(sorted(set(models) - {champion}))
                registry.set_registered_model_alias("breast_cancer", "champion", champion)
                assert call("swap", "/admin/reload", None, {champion})["model_version"] == champion
                if swap % every == 0 and len(rollbacks) < args.canaries:
                    challenger = pick.choice(sorted(set(models) - {champion}))
                    wait_turn()
                    rollout = {"mode": "canary", "challenger_version": challenger, "share": 0.5, "sticky_key": None}
                    call("canary", "/admin/rollout", rollout, {champion, challenger})
                    wait_turn()
                    final = call("rollback", "/admin/rollout/end", {}, {champion})
                    assert final["model_version"] == champion and final["arms"]["challenger"]["requests"] > 0, final
                    rollbacks.append(len(changes) - 1)
            time.sleep(args.seconds / calls)  # traffic after the last call too
            clients.stop.set()
            clients.join(30)
            duration = time.monotonic() - started
    report(clients.answers, changes, rollbacks, args.clients, duration)


def report(answers: list[Answer], changes: list[Change], rollbacks: list[int], clients: int, duration: float) -> None:
    """Print the table; exit 1 if any answer failed or came from the wrong version."""
    non_200 = sum(a.status not in (0, 200) for a in answers)
    errors = sum(a.status == 0 for a in answers)
    wrong_body = sum(a.wrong for a in answers if a.status == 200)
    not_serving = sum(a.version not in may_answer(changes, a) for a in answers if a.status == 200)
    after_rollback = []
    for index in rollbacks:
        end, following = changes[index], changes[index + 1] if index + 1 < len(changes) else None
        last = math.inf if following is None else following.started_ns
        challenger = next(iter(changes[index - 1].serving - end.serving))
        window = [a for a in answers if end.ended_ns < a.sent_ns and a.received_ns < last]
        after_rollback.append((len(window), sum(a.version == challenger for a in window)))
    calls = changes[1:]

    def during_call(a: Answer) -> bool:
        return any(c.started_ns <= a.received_ns and a.sent_ns <= c.ended_ns for c in calls)

    answered = [a for a in answers if a.status == 200]
    during = [a.latency_ms for a in answered if during_call(a)]
    outside = [a.latency_ms for a in answered if not during_call(a)]
    swap_s = [(c.ended_ns - c.started_ns) / 1e9 for c in calls if c.what == "swap"]
    print(f"\n1-minute load average after: {os.getloadavg()[0]:.2f} (this run's server and clients included)\n")
    print(
        "| clients | seconds | requests | swaps | canary rollbacks | non-200 | connection errors "
        "| wrong body for the header's version | version not serving at the time "
        "| challenger answers after a rollback | p50 / p99 / max ms during admin calls | p50 / p99 / max ms otherwise |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {clients} | {duration:.1f} | {len(answers):,} | {len(swap_s)} | {len(rollbacks)} | {non_200} | {errors} "
        f"| {wrong_body} | {not_serving} | {sum(n for _, n in after_rollback)} "
        f"| {percentile(during, 0.5):.2f} / {percentile(during, 0.99):.2f} / {percentile(during, 1):.1f} "
        f"| {percentile(outside, 0.5):.2f} / {percentile(outside, 0.99):.2f} / {percentile(outside, 1):.1f} |"
    )
    served = Counter(a.version for a in answered)
    print(
        f"\n- answers per version: {', '.join(f'{v}: {n:,}' for v, n in sorted(served.items()))}; "
        f"{len(during):,} answers overlapped an admin call"
    )
    print(
        f"- /admin/reload (after the alias moved) took {statistics.median(swap_s):.2f} s median, "
        f"{max(swap_s):.2f} s max; requests sent after each rollback returned and answered before the next admin "
        f"call: {', '.join(str(n) for n, _ in after_rollback)}"
    )
    if non_200 or errors or wrong_body or not_serving or any(n for _, n in after_rollback):
        sys.exit(1)


if __name__ == "__main__":
    main()
