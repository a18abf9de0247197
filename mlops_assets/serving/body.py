"""Reading a request body within a size limit and a deadline, so that neither a large body nor a client that
trickles one can hold the endpoint.

A body without a Content-Length is refused as soon as it passes the limit; a body not whole within the
deadline is answered 408 and the connection closed (the reading task is cancelled by ``Deadlines`` and the
cancellation turned into that answer here).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from mlops_assets.serving.deadlines import Deadlines
from mlops_assets.serving.http import HttpError, header


class BodyReader:
    """Bodies of at most ``max_bytes``, each whole within ``timeout_s`` of its head."""

    def __init__(self, max_bytes: int, timeout_s: float):
        self.max_bytes = max_bytes
        self.deadlines = Deadlines(timeout_s, self._timed_out_task)
        self._timed_out: set[asyncio.Task] = set()

    async def read(self, scope: dict, receive: Callable) -> bytes | None:
        """The request body, or ``None`` if the client disconnected; counted as it streams in, so a body
        without a Content-Length is refused as soon as it passes the limit, and refused with a 408 unless
        it is whole within ``body_timeout_s`` (a client that trickles it would hold the connection)."""
        limit = self.max_bytes
        declared = header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HttpError(413, f"request body of {int(declared)} bytes is over the limit of {limit} bytes")
        chunks, size = [], 0
        task = asyncio.current_task()
        self.deadlines.set(task, asyncio.get_running_loop())
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise HttpError(413, f"request body over the limit of {limit} bytes")
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        except asyncio.CancelledError:
            if task not in self._timed_out:
                raise
            self._timed_out.discard(task)
            task.uncancel()
            seconds = self.deadlines.seconds
            message = f"the request body was not complete within {seconds:g} s ({size} bytes came)"
            raise HttpError(408, message, close=True) from None
        finally:
            self.deadlines.clear(task)

    def _timed_out_task(self, task: asyncio.Task) -> None:
        self._timed_out.add(task)
        task.cancel()
