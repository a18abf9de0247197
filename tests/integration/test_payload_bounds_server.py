"""Issue 19: a request of a million ignored columns (13.9 MB) got a 200 after 15.5 s, and one of 600,000 held
``/ping`` for 8.85 s. On a real socket, each form of such a body is refused, and ``/ping`` answers quickly all
the while."""

import http.client
import threading
import time

import orjson
import pytest

from mlops_assets.serving.app import LoadedModel, create_app
from tests.integration.test_server import DTYPES, SPEC, fitted, serving

PING_WITHIN_S = 0.5


def hostile_bodies() -> list[tuple[bytes, str]]:
    """A million columns the model ignores (and its own), in each form: 10-14 MB, under the 16 MiB limit."""
    names = [*DTYPES, *(f"x{i:06d}" for i in range(1_000_000))]
    record = dict.fromkeys(names, 0)
    return [
        (orjson.dumps({"dataframe_split": {"columns": names, "data": [[0] * len(names)]}}), "application/json"),
        (orjson.dumps({"dataframe_records": [dict(list(record.items())[:600_000])]}), "application/json"),
        (orjson.dumps({"inputs": record}), "application/json"),
        (orjson.dumps({"instances": [record]}), "application/json"),
        ((",".join(names) + "\n" + ",".join("0" for _ in names) + "\n").encode(), "text/csv"),
    ]


@pytest.fixture(scope="module")
def port():
    model = LoadedModel("1", fitted(0.5))
    app = create_app(SPEC.name, DTYPES, lambda: model)
    with serving(app) as port:
        yield port


def test_each_form_of_a_million_ignored_columns_is_refused_while_ping_answers_quickly(port):
    bodies, answers, done = hostile_bodies(), [], threading.Event()

    def attack() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(2):
            for body, content_type in bodies:
                started = time.monotonic()
                connection.request("POST", "/invocations", body, {"Content-Type": content_type})
                response = connection.getresponse()
                answers.append((response.status, response.read(), time.monotonic() - started))
        done.set()

    attacker = threading.Thread(target=attack)
    attacker.start()
    pings = []
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while not done.is_set():
        started = time.monotonic()
        connection.request("GET", "/ping")
        assert connection.getresponse().read() == b""
        pings.append(time.monotonic() - started)
        time.sleep(0.005)
    attacker.join()
    assert [status for status, _, _ in answers] == [400] * 10
    assert all(b"more than a request of at most" in body for _, body, _ in answers)
    assert len(pings) > 10 and max(pings) < PING_WITHIN_S, f"{len(pings)} pings, the slowest {max(pings):.2f} s"
