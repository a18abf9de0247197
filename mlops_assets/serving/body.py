"""Reading a request body within a size limit and a deadline, so that neither a large body nor a client that
trickles one can hold the endpoint.

A body without a Content-Length is refused as soon as it passes the limit; a body not whole within the
deadline is answered 408 and the connection closed (the reading task is cancelled by ``Deadlines`` and the
cancellation turned into that answer here). Either that or a client gone mid-body raises ``IncompleteBody``: the
request is the client's doing, which the app counts apart from those it served. The moment a body is whole is
kept in the request's scope (``BODY_WHOLE``): the endpoint's latency runs from there, not from a client's upload.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from mlops_assets.serving.deadlines import Deadlines
from mlops_assets.serving.http import HttpError, header

BODY_WHOLE = "mlops.body_whole"  # scope key: ``time.perf_counter()`` when the request's body was whole


class IncompleteBody(HttpError):
    """The client did not send the whole body: past the deadline (answered 408, ``answered``), or it went away
    first (nothing to answer)."""

    def __init__(self, message: str, answered: bool):
        super().__init__(408, message, close=True)
        self.answered = answered


class BodyReader:
    """Bodies of at most ``max_bytes``, each whole within ``timeout_s`` of its head."""

    def __init__(self, max_bytes: int, timeout_s: float):
        self.max_bytes = max_bytes
        self.deadlines = Deadlines(timeout_s, self._timed_out_task)
        self._timed_out: set[asyncio.Task] = set()

    async def read(self, scope: dict, receive: Callable) -> bytes:
        """The request body, counted as it streams in, so a body without a Content-Length is refused as soon
        as it passes the limit; ``IncompleteBody`` unless it is whole within ``body_timeout_s`` (a client that
        trickles it would hold the connection) and the client stays."""
        limit = self.max_bytes
        declared = header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HttpError(413, f"request body of {int(declared)} bytes is over the limit of {limit} bytes")
        chunks, size = [], 0
        task = asyncio.current_task()
        assert task is not None  # a coroutine asyncio runs is in a task
        self.deadlines.set(task, asyncio.get_running_loop())
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise IncompleteBody(f"the client went away after {size} bytes of the body", answered=False)
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise HttpError(413, f"request body over the limit of {limit} bytes")
                chunks.append(chunk)
                if not message.get("more_body", False):
                    scope[BODY_WHOLE] = time.perf_counter()
                    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        except asyncio.CancelledError:
            if task not in self._timed_out:
                raise
            self._timed_out.discard(task)
            task.uncancel()
            seconds = self.deadlines.seconds
            message = f"the request body was not complete within {seconds:g} s ({size} bytes came)"
            raise IncompleteBody(message, answered=True) from None
        finally:
            self.deadlines.clear(task)

    def _timed_out_task(self, task: asyncio.Task) -> None:
        self._timed_out.add(task)
        task.cancel()
