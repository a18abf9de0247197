"""Reliability under load: 8 clients send without pause while the champion is swapped 20 times and 5 canaries
are rolled back; every request gets a 200 whose body is what the version named in its ``x-model-version``
header answers for the rows sent.

Four versions answer differently, so a wrong version shows in the body: 1 is the pipeline's model, 2 the same
trained on flipped labels (the opposite answer for every row), 3 and 4 are regularised until they answer
benign (3) or malignant (4) for every row. A single row tells 1 and 4 from 2 and 3 when 1 calls it malignant,
1 and 3 from 2 and 4 when 1 calls it benign; a request of one row of each kind tells all four apart.
"""

import http.client
import json
import math
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass

import pytest
from sklearn.linear_model import LogisticRegression

from mlops_assets.model.pipeline_model import fit_pipeline_model
from mlops_assets.serving.app import LoadedModel, create_app
from mlops_assets.serving.inference_log import InferenceLogWriter, log_schema
from tests.integration.test_server import DATA, DTYPES, SPEC, call, serving

CLIENTS = 8
PAUSE_S = 0.2  # the least traffic between two admin calls
LOAD_S = 0.02  # the loader's registry and artifact I/O: requests keep arriving while it runs
ADMIN = {"Authorization": "Bearer secret", "Content-Type": "application/json"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def versions() -> dict[str, LoadedModel]:
    flipped = DATA.assign(diagnosis=DATA["diagnosis"].map({"benign": "malignant", "malignant": "benign"}))
    trained = {"1": (DATA, 0.5), "2": (flipped, 0.5), "3": (DATA, 1e-6), "4": (flipped, 1e-6)}
    return {
        version: LoadedModel(version, fit_pipeline_model(SPEC, frame, LogisticRegression(C=C, max_iter=1000)))
        for version, (frame, C) in trained.items()
    }


@dataclass(frozen=True)
class Payload:
    body: bytes
    expected: dict[str, list]  # version -> its predictions for these rows


@pytest.fixture(scope="module")
def payloads(versions) -> list[Payload]:
    """Single rows, and after every third a row of each kind: which version answered shows in every body."""
    frame = DATA[SPEC.input_columns].iloc[:60]
    malignant = versions["1"].model.predict(frame).labels == "malignant"
    pairs = list(zip(frame.index[malignant], frame.index[~malignant], strict=False))
    assert pairs, "version 1 gives the first 60 rows one answer"
    chosen = []
    for i, row in enumerate(frame.index):
        chosen.append([row])
        if i % 3 == 2:
            chosen.append(list(pairs[i // 3 % len(pairs)]))
    result = []
    for rows in chosen:
        sample = frame.loc[rows]
        body = json.dumps({"dataframe_split": {"columns": list(sample.columns), "data": sample.to_numpy().tolist()}})
        expected = {v: loaded.model.predict(sample).labels.tolist() for v, loaded in versions.items()}
        result.append(Payload(body.encode(), expected))
    for a in versions:  # the premise: any two versions give different answers to some single row and every pair
        for b in set(versions) - {a}:
            assert any(p.expected[a] != p.expected[b] for p in result if len(p.expected[a]) == 1)
            assert all(p.expected[a] != p.expected[b] for p in result if len(p.expected[a]) == 2)
    return result


@dataclass(frozen=True)
class Answer:
    sent: float  # time.monotonic() before the request was written
    received: float  # after the whole response was read
    status: int  # 0: the connection failed
    version: str | None  # the x-model-version header
    wrong: bool  # the body is not what ``version`` answers for the rows sent


class Clients:
    """Threads with one persistent connection each and one request in flight, sending until the block ends."""

    def __init__(self, port: int, payloads: list[Payload], count: int = CLIENTS):
        self.port, self.payloads = port, payloads
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send, args=(i,), daemon=True) for i in range(count)]

    def __enter__(self) -> "Clients":
        for thread in self._threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(self.answers) < 10 * len(self._threads) and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)

    def pause(self, seconds: float = PAUSE_S, answers: int = 50) -> None:
        """Let traffic flow for ``seconds`` and until ``answers`` requests sent from now on were answered (at
        most one request per client was in flight before), so that each window has traffic however slow
        the machine."""
        target, deadline = len(self.answers) + len(self._threads) + answers, time.monotonic() + 30
        time.sleep(seconds)
        while len(self.answers) < target and time.monotonic() < deadline:
            time.sleep(0.01)

    def _send(self, offset: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        i = offset * 7
        while not self._stop.is_set():
            payload = self.payloads[i % len(self.payloads)]
            i += 1
            sent = time.monotonic()
            try:
                connection.request("POST", "/invocations", payload.body, JSON)
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                self.answers.append(Answer(sent, time.monotonic(), 0, None, True))
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                continue
            version = response.getheader("x-model-version")
            wrong = response.status != 200 or predictions(body) != payload.expected.get(version)
            self.answers.append(Answer(sent, time.monotonic(), response.status, version, wrong))
        connection.close()


def predictions(body: bytes) -> list | None:
    try:
        return json.loads(body)["predictions"]
    except (ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class Change:
    """An admin call, sent at ``started`` and answered at ``ended``; ``serving``: the versions that may answer
    once it took effect."""

    started: float
    ended: float
    serving: frozenset[str]


class Timeline:
    """The admin calls made, to tell which versions may answer a request sent and answered at given times."""

    def __init__(self, port: int, serving: set[str]):
        self.port = port
        self.changes = [Change(-math.inf, -math.inf, frozenset(serving))]

    def admin(self, path: str, body: dict | None = None, serving: set[str] = frozenset()) -> tuple[int, dict]:
        """POST an admin route; ``serving``: the versions that answer once it succeeded (none for a call meant
        to fail); a failed call changes nothing."""
        started = time.monotonic()
        status, _, answer = call(self.port, "POST", path, None if body is None else json.dumps(body).encode(), ADMIN)
        unchanged = self.changes[-1].serving
        self.changes.append(Change(started, time.monotonic(), frozenset(serving) if status == 200 else unchanged))
        return status, json.loads(answer)

    def may_answer(self, answer: Answer) -> frozenset[str]:
        """A change takes effect between its call's send and answer, so what it set may answer from the send
        of that call to the answer of the next one."""
        following = [*self.changes[1:], Change(math.inf, math.inf, frozenset())]
        return frozenset().union(
            *(
                c.serving
                for c, n in zip(self.changes, following, strict=True)
                if c.started <= answer.received and n.ended >= answer.sent
            )
        )

    def between(self, answers: list[Answer], first: Change, then: Change | None) -> list[Answer]:
        """The answers to requests sent after ``first`` returned and answered before ``then`` was sent."""
        last = math.inf if then is None else then.started
        return [a for a in answers if first.ended < a.sent and a.received < last]


def endpoint(tmp_path, versions: dict[str, LoadedModel], loader):
    writer = InferenceLogWriter(tmp_path / "log", log_schema(DTYPES, SPEC.task, SPEC.id_column), flush_seconds=0.5)
    return create_app(
        SPEC.name,
        DTYPES,
        loader,
        writer,
        admin_token="secret",
        id_column=SPEC.id_column,
        version_loader=versions.__getitem__,
    )


def assert_every_answer_right(answers: list[Answer], timeline: Timeline) -> None:
    failed = [a for a in answers if a.status != 200]
    assert not failed, f"{len(failed)} of {len(answers)} requests failed (status 0: connection error): {failed[:3]}"
    unnamed = [a for a in answers if a.version is None]
    assert not unnamed, f"{len(unnamed)} answers carry no x-model-version header"
    wrong = [a for a in answers if a.wrong]
    assert not wrong, f"{len(wrong)} bodies are not what the version in their header answers: {wrong[:3]}"
    stale = [a for a in answers if a.version not in timeline.may_answer(a)]
    assert not stale, f"{len(stale)} answers came from a version not serving at the time: {stale[:3]}"


def test_swaps_and_canary_rollbacks_under_load_fail_no_request_and_name_each_answers_version(
    tmp_path, versions, payloads
):
    target = {"version": "1"}

    def loader() -> LoadedModel:
        time.sleep(LOAD_S)
        return versions[target["version"]]

    pick = random.Random(0)
    rollbacks = []  # (champion, challenger, index of the rollout's start in timeline.changes)
    with serving(endpoint(tmp_path, versions, loader)) as port, Clients(port, payloads) as clients:
        timeline = Timeline(port, {"1"})
        for swap in range(1, 21):
            previous = target["version"]
            champion = target["version"] = pick.choice(sorted(set(versions) - {previous}))
            status, answer = timeline.admin("/admin/reload", serving={champion})
            assert (status, answer) == (200, {"model_version": champion, "previous": previous})
            clients.pause()
            if swap % 4 == 0:
                challenger = pick.choice(sorted(set(versions) - {champion}))
                rollout = {"mode": "canary", "challenger_version": challenger, "share": 0.5, "sticky_key": None}
                status, answer = timeline.admin("/admin/rollout", rollout, serving={champion, challenger})
                assert status == 200 and answer["rollout"]["challenger_version"] == challenger, answer
                rollbacks.append((champion, challenger, len(timeline.changes) - 1))
                clients.pause()
                status, final = timeline.admin("/admin/rollout/end", {}, serving={champion})
                assert status == 200 and final["model_version"] == champion, final
                assert final["arms"]["challenger"]["requests"] > 0, final
                clients.pause()
    answers = clients.answers

    assert_every_answer_right(answers, timeline)
    served = Counter(a.version for a in answers)
    assert set(served) == set(versions) and min(served.values()) >= 20, served
    assert len(rollbacks) == 5
    changes = [*timeline.changes, None]
    for champion, challenger, start in rollbacks:
        during = timeline.between(answers, changes[start], changes[start + 1])
        assert {a.version for a in during} == {champion, challenger}, Counter(a.version for a in during)
        after = timeline.between(answers, changes[start + 1], changes[start + 2])
        assert after, "no request was sent between the rollback and the next admin call"
        assert {a.version for a in after} == {champion}, Counter(a.version for a in after)


def test_a_reload_whose_loader_fails_mid_load_keeps_the_old_model_serving(tmp_path, versions, payloads):
    target = {"version": "1"}

    def loader() -> LoadedModel:
        time.sleep(LOAD_S)
        if target["version"] == "broken":
            raise RuntimeError("registry unreachable")
        return versions[target["version"]]

    with serving(endpoint(tmp_path, versions, loader)) as port, Clients(port, payloads) as clients:
        timeline = Timeline(port, {"1"})
        clients.pause()
        target["version"] = "broken"
        status, answer = timeline.admin("/admin/reload")
        assert status == 500 and "still serving the old one: registry unreachable" in answer["message"]
        clients.pause()
        assert json.loads(call(port, "GET", "/version")[2])["model_version"] == "1"
        target["version"] = "2"
        assert timeline.admin("/admin/reload", serving={"2"}) == (200, {"model_version": "2", "previous": "1"})
        clients.pause()
    answers = clients.answers

    assert_every_answer_right(answers, timeline)
    failed_reload, good_reload = timeline.changes[1:]
    after_failure = timeline.between(answers, failed_reload, good_reload)
    assert after_failure and {a.version for a in after_failure} == {"1"}
    after_success = timeline.between(answers, good_reload, None)
    assert after_success and {a.version for a in after_success} == {"2"}
