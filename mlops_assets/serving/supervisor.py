"""Several worker processes on one port, and the parent that keeps them running (``mlops-assets serve --workers N``).

The parent binds one listening socket per worker, all on the same address with ``SO_REUSEPORT``: the kernel
spreads new connections over them by a hash of the connection, so that each worker gets its share whichever
wakes first (one shared socket let a busy worker take every connection of a burst). The parent keeps every
socket open: a worker that dies leaves its socket's queued connections waiting for its replacement, which
inherits the same socket, rather than reset; and clients that come before the workers are ready wait, as with one
process. The parent then forks each worker (the worker builds its app, its log writers and their threads after
the fork) and waits. A worker that exits while the endpoint runs is restarted (at once, or after a growing pause
when it keeps dying within ``QUICK_EXIT_S`` of its start); one that exits before any worker ever served (a
champion that cannot load) stops the endpoint with its status, as one process would exit. SIGTERM or SIGINT
stops every worker gracefully (each writes its logs), then the parent. A worker dies with the parent (Linux's
parent-death signal), so a kill -9 of the parent frees the port.

How the workers agree on what they serve, and how their figures are summed, is worker_app.py's.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable

from mlops_assets.serving.worker_control import ControlFolder

log = logging.getLogger(__name__)

QUICK_EXIT_S = 10.0  # a worker that exits sooner after its start is restarted after a pause, doubled each time
MAX_PAUSE_S = 30.0
STOP_TIMEOUT_S = 30.0  # a worker still running this long after SIGTERM is killed


def reuse_port_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening TCP sockets on ``host:port`` (0: one free port for all) with ``SO_REUSEPORT``."""
    from mlops_assets.serving.run import bind

    first = bind(host, port, reuse_port=True)
    port = first.getsockname()[1]
    sockets = [first, *(bind(host, port, reuse_port=True) for _ in range(count - 1))]
    for sock in sockets:
        sock.listen(1024)
    return sockets


class Supervisor:
    """Runs ``start_worker(index, sock)`` in a forked process per socket and keeps each running until a stop."""

    def __init__(
        self,
        sockets: list[socket.socket],
        control: ControlFolder,
        start_worker: Callable[[int, socket.socket], None],
    ):
        self.sockets, self.control, self.start_worker = sockets, control, start_worker
        self.pids: dict[int, int] = {}  # pid -> worker index
        self.started: dict[int, float] = {}  # worker index -> when its process started
        self.quick_exits: dict[int, int] = {}
        self.restart_at: dict[int, float] = {}
        self.restarts = 0
        self._stopping = False

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (0), or until a worker fails before any served (its exit status)."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop)
        for worker in range(len(self.sockets)):
            self._spawn(worker)
        ever_served = False
        while not self._stopping:
            pid, status = os.waitpid(-1, os.WNOHANG)
            ever_served = ever_served or self._any_served()
            if pid == 0:
                self._restart_due()
                time.sleep(0.05)
                continue
            index = self.pids.pop(pid, None)
            if index is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            self.control.retire(index)
            if self._stopping:
                break
            if not ever_served:
                log.error("worker %d exited with %d before the endpoint served; stopping", index, code)
                self._terminate()
                return code or 1
            lived = time.monotonic() - self.started[index]
            quick = self.quick_exits[index] = self.quick_exits.get(index, 0) + 1 if lived < QUICK_EXIT_S else 0
            pause = 0.0 if not quick else min(MAX_PAUSE_S, 0.5 * 2 ** (quick - 1))
            print(f"worker {index} (pid {pid}) exited with {code}; restarting it in {pause:.1f} s", flush=True)
            self.restart_at[index] = time.monotonic() + pause
        self._terminate()
        return 0

    def _any_served(self) -> bool:
        return any(self.control.ack(i).get("pid") in self.pids for i in range(len(self.sockets)))

    def _restart_due(self) -> None:
        now = time.monotonic()
        for index, at in list(self.restart_at.items()):
            if at <= now:
                del self.restart_at[index]
                self.restarts += 1
                self._spawn(index)

    def _spawn(self, index: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(signum, signal.SIG_DFL)  # uvicorn installs its own once it runs
                _die_with(parent)
                for other, sock in enumerate(self.sockets):
                    if other != index:
                        sock.close()
                self.start_worker(index, self.sockets[index])
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self.pids[pid] = index
        self.started[index] = time.monotonic()

    def _stop(self, signum, frame) -> None:
        self._stopping = True

    def _terminate(self) -> None:
        """SIGTERM every worker, wait for them (each flushes its logs), SIGKILL those still running past
        ``STOP_TIMEOUT_S``."""
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while self.pids:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid:
                self.pids.pop(pid, None)
            elif time.monotonic() > deadline:
                for pid in self.pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                deadline = float("inf")
            else:
                time.sleep(0.05)


def _die_with(parent: int) -> None:
    """Have the kernel send this process SIGTERM when its parent dies (Linux; elsewhere nothing)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the signal was asked for
        os.kill(os.getpid(), signal.SIGTERM)
