"""Deadlines for reading a request: its head (uvicorn has none) and its body, so slow clients cannot hold
connections.

uvicorn closes a connection that idles between requests (``timeout_keep_alive``), but one that connects and
sends nothing, or sends its headers or its body a byte at a time, is held for as long as the client likes: a
few such clients hold every connection and file descriptor. ``ReadDeadlineProtocol`` is uvicorn's httptools
protocol with a deadline on each request's head, and one on the rest of a body that nobody reads (a route
that answers without reading it); the app puts one on the bodies it reads (``body.py``, ``BodyReader.read``), so
that it can answer with MLflow's error document.

Both go through ``Deadlines``: setting and clearing one is a dict operation and one timer sweeps them all,
since a timer per request (``loop.call_later``, ``asyncio.timeout``) cost more than the app's checks of a
row. A request past its deadline is ended at most a quarter of the deadline later, and at most a second.

The protocol answers a late head (408) and a head it cannot parse (uvicorn's 400) itself: the app never sees
those requests, so the protocol hands each such answer to the app's telemetry, which holds every answer the
endpoint gave. A late head is the client's doing, not the endpoint's: it goes to ``incomplete``
(``Telemetry.incomplete``), counted apart from the requests the endpoint served, with no latency, so that clients
which stall cannot fail the endpoint's SLOs; an unparsable head goes to ``count`` (``Telemetry.request``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar
from urllib.parse import urlsplit

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

_TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"

Count = Callable[[str, int | None, float], None]  # (path, status, seconds): ``Telemetry.request``
Incomplete = Callable[[str, str, int | None], None]  # (path, part, status): ``Telemetry.incomplete``
K = TypeVar("K", bound=Hashable)


class Deadlines(Generic[K]):
    """Keys that must be cleared within ``seconds`` of being set; ``expire(key)`` is called for those that
    are not, on the event loop that set them."""

    def __init__(self, seconds: float, expire: Callable[[K], None]):
        self.seconds = seconds
        self._expire = expire
        self._resolution = min(max(seconds / 4, 0.01), 1.0)
        self._due: dict[K, float] = {}
        self._sweep_handle: asyncio.TimerHandle | None = None
        self._sweep_loop: asyncio.AbstractEventLoop | None = None  # a stopped server's loop never sweeps again

    def set(self, key: K, loop: asyncio.AbstractEventLoop) -> None:
        self._due[key] = loop.time() + self.seconds
        if self._sweep_handle is None or self._sweep_loop is not loop:
            self._sweep_loop = loop
            self._sweep_handle = loop.call_later(self._resolution, self._sweep, loop)

    def clear(self, key: K) -> None:
        self._due.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._due

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for key in [key for key, due in self._due.items() if due <= now]:
            del self._due[key]
            try:
                self._expire(key)
            except Exception:  # one connection's failure must not stop the sweeps for the others
                log.exception("could not end a request past its deadline")
        self._sweep_handle = loop.call_later(self._resolution, self._sweep, loop) if self._due else None


class ReadDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol; a request's head must arrive within ``head_deadlines.seconds`` of its
    first byte (the first request's: of the connection opening), or the client gets a 408 and is closed. A
    request answered before its body arrived must send the rest within ``body_deadlines.seconds``, or it is
    closed. The answers it gives itself go to ``count``, a late head's to ``incomplete``."""

    head_deadlines: Deadlines[ReadDeadlineProtocol]  # one pair per server: with_read_deadlines makes the class
    body_deadlines: Deadlines[ReadDeadlineProtocol]
    count: Count
    incomplete: Incomplete
    _head_began: float  # loop time the head deadline runs from

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_began = self.loop.time()
        self.head_deadlines.set(self, self.loop)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self not in self.head_deadlines:  # the first request's runs from the connection opening
            self._head_began = self.loop.time()
            self.head_deadlines.set(self, self.loop)

    def on_headers_complete(self) -> None:
        self.head_deadlines.clear(self)
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.cycle is not None and self.cycle.more_body:  # answered, and the body still coming
            self.body_deadlines.set(self, self.loop)

    def on_message_complete(self) -> None:
        self.body_deadlines.clear(self)
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self.head_deadlines.clear(self)
        self.body_deadlines.clear(self)
        super().connection_lost(exc)

    def head_timed_out(self) -> None:
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # a pipelined head is late: close once the answer in progress is sent
            return
        self.transport.write(_TIMED_OUT)
        self.transport.close()
        self.incomplete(self._path(), "head", 408)

    def body_timed_out(self) -> None:
        self.transport.close()  # the answer went out already

    def send_400_response(self, msg: str) -> None:
        super().send_400_response(msg)
        self.count(self._path(), 400, self.loop.time() - self._head_began)

    def _path(self) -> str:
        """The path the head named as far as it came (none: ``""``, counted as ``other``)."""
        return urlsplit(getattr(self, "url", b"").decode("latin-1")).path  # set once the head's first byte came


def with_read_deadlines(
    head_timeout_s: float, body_timeout_s: float, count: Count, incomplete: Incomplete
) -> type[ReadDeadlineProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)``, with deadlines of its own, handing the answers
    it gives itself to ``count``, and a late head's to ``incomplete``."""
    attributes = {
        "head_deadlines": Deadlines(head_timeout_s, ReadDeadlineProtocol.head_timed_out),
        "body_deadlines": Deadlines(body_timeout_s, ReadDeadlineProtocol.body_timed_out),
        "count": staticmethod(count),
        "incomplete": staticmethod(incomplete),
    }
    return type(ReadDeadlineProtocol.__name__, (ReadDeadlineProtocol,), attributes)
