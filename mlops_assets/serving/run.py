"""Running the endpoint: its socket and uvicorn's settings."""

from __future__ import annotations

import socket
from typing import Any

from mlops_assets.serving.app import ScoringApp


def bind(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to ``host:port`` (0: any free port) for ``run``; with ``reuse_port``, one of several
    sockets on that address among which the kernel spreads connections (supervisor.py).

    Created with ``IPPROTO_TCP`` so that asyncio's own loop (the fallback to uvloop) also sets TCP_NODELAY on
    the connections it accepts: without it every response waited for the client's delayed ACK (bench/RESULTS.md,
    "Serving").
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def server_config(app: ScoringApp, **settings: Any):
    """uvicorn's settings for ``app`` (a ``ScoringApp``): uvloop, the httptools parser with the app's read
    deadlines (deadlines.py) counting the answers it gives in the app's telemetry (a late head as the client's,
    apart), no access log (the settings bench/serving.py measured); ``settings`` override them."""
    import uvicorn

    from mlops_assets.serving.deadlines import with_read_deadlines

    telemetry = app.telemetry
    endpoint = app.settings
    http = with_read_deadlines(
        endpoint.head_timeout_s, endpoint.body_timeout_s, telemetry.request, telemetry.incomplete
    )
    defaults = {"loop": "uvloop", "http": http, "log_level": "warning", "access_log": False}
    return uvicorn.Config(app, **{**defaults, **settings})


def run(app: ScoringApp, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` until SIGINT/SIGTERM, with ``server_config``'s settings."""
    import uvicorn

    uvicorn.Server(server_config(app)).run(sockets=[sock])
