"""Slow clients on real sockets: a head or a body that trickles in is answered 408 and its connection closed,
while other clients are served. Deadlines are half a second here; the waits allow twenty times that."""

import http.client
import json
import select
import socket
import threading
import time

import pytest

from mlops_assets.serving.app import LoadedModel, create_app
from tests.integration.test_server import DTYPES, SPEC, fitted, rows, serving

DEADLINE_S = 0.5
GIVE_UP_S = 10.0  # a connection still open by then was not going to be closed
BODY = rows(1)
SLOW_HEAD = b"POST /invocations HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000
SLOW_BODY_HEAD = f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: {len(BODY)}\r\n\r\n".encode()


@pytest.fixture(scope="module")
def port():
    model = LoadedModel("1", fitted(0.5))
    app = create_app(SPEC.name, DTYPES, lambda: model, head_timeout_s=DEADLINE_S, body_timeout_s=DEADLINE_S)
    with serving(app) as port:
        yield port


def trickle(port: int, head: bytes, drip: bytes) -> tuple[bool, bytes]:
    """Send ``head``, then ``drip`` a byte at a time every 20 ms; whether the server closed the connection
    within ``GIVE_UP_S``, and what it answered before closing."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head)
        deadline, sent = time.monotonic() + GIVE_UP_S, 0
        while time.monotonic() < deadline:
            if select.select([sock], [], [], 0.02)[0]:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    return True, answer
                if not data:
                    return True, answer
                answer += data
            elif sent < len(drip):
                try:
                    sock.sendall(drip[sent : sent + 1])
                except (BrokenPipeError, ConnectionResetError):
                    return True, answer
                sent += 1
    return False, answer


def test_a_client_that_connects_and_sends_nothing_is_closed(port):
    closed, answer = trickle(port, b"", b"")
    assert closed and answer.startswith(b"HTTP/1.1 408 ")


def test_a_head_sent_byte_by_byte_is_answered_408_and_closed(port):
    closed, answer = trickle(port, b"", SLOW_HEAD)
    assert closed and answer.startswith(b"HTTP/1.1 408 ")


def test_a_body_sent_byte_by_byte_is_answered_408_and_closed(port):
    closed, answer = trickle(port, SLOW_BODY_HEAD, BODY)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert closed and head.startswith(b"HTTP/1.1 408 ") and b"connection: close" in head.lower()
    assert json.loads(body)["error_code"] == "REQUEST_TIMEOUT"
    assert json.loads(body)["message"].startswith(f"the request body was not complete within {DEADLINE_S:g} s")


def test_a_body_that_no_route_reads_is_cut_off_after_the_answer(port):
    closed, answer = trickle(port, b"POST /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", b"a" * 5000)
    assert closed and answer.startswith(b"HTTP/1.1 405 ")


def test_a_keep_alive_connection_may_idle_between_requests_longer_than_the_head_deadline(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(2):
        connection.request("POST", "/invocations", BODY, {"Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["predictions"]
        time.sleep(2 * DEADLINE_S)  # idle, under uvicorn's keep-alive of 5 s
    connection.close()


def test_other_clients_are_served_while_forty_slow_ones_are_cut_off_again_and_again(port):
    stop, outcomes = threading.Event(), []

    def attack(head: bytes, drip: bytes) -> None:
        while not stop.is_set():
            outcomes.append(trickle(port, head, drip)[0])

    attackers = [threading.Thread(target=attack, args=(b"", SLOW_HEAD)) for _ in range(20)]
    attackers += [threading.Thread(target=attack, args=(SLOW_BODY_HEAD, BODY)) for _ in range(20)]
    for thread in attackers:
        thread.start()
    try:
        statuses = []
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while len(outcomes) < 80:  # every attacker cut off twice on average, served all along
            connection.request("POST", "/invocations", BODY, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
        connection.close()
    finally:
        stop.set()
        for thread in attackers:
            thread.join()
    assert statuses and set(statuses) == {200}
    assert all(outcomes)  # every slow connection was closed by the server
