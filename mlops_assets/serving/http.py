"""The endpoint's HTTP plumbing over bare ASGI: errors as MLflow answers them, headers, bearer tokens."""

from __future__ import annotations

import hmac
from collections.abc import Callable

import orjson

ERROR_CODES = {  # MLflow's names for them; other 4xx are BAD_REQUEST, other 5xx INTERNAL_ERROR
    401: "UNAUTHENTICATED",
    404: "ENDPOINT_NOT_FOUND",
    408: "REQUEST_TIMEOUT",
    413: "REQUEST_LIMIT_EXCEEDED",
    503: "TEMPORARILY_UNAVAILABLE",
}


class HttpError(Exception):
    """A request answered with ``status`` and a message the client can act on."""

    def __init__(self, status: int, message: str, close: bool = False):
        super().__init__(message)
        self.status = status
        self.close = close  # answer with "Connection: close" (closing while a client still sends resets it)


def authorize(scope: dict, token: str | None, message: str) -> None:
    """Raise 401 unless the request carries ``Authorization: Bearer <token>`` (nothing to check without one).

    Compared as HTTP defines the field, not as one parser hands it over: whitespace around a field value is not
    part of it (RFC 9110 5.5; some parsers strip it, others do not) and the scheme is case-insensitive (11.1).
    The token itself is compared whole, in constant time.
    """
    if token:
        scheme, _, credentials = (header(scope, b"authorization") or "").strip(" \t").partition(" ")
        expected = token.encode()
        if not (hmac.compare_digest(credentials.encode(), expected) and scheme.lower() == "bearer"):
            raise HttpError(401, message)


def header(scope: dict, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def respond(
    send: Callable,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    content_type: bytes | None = b"application/json",
) -> None:
    head = [(b"content-length", str(len(body)).encode()), *(headers or [])]
    if content_type:
        head.append((b"content-type", content_type))
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def respond_error(send: Callable, status: int, message: str, close: bool = False) -> None:
    code = ERROR_CODES.get(status, "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR")
    headers = [(b"connection", b"close")] if close else None
    await respond(send, status, orjson.dumps({"error_code": code, "message": message}), headers)
