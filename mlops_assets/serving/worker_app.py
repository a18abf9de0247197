"""One worker of an endpoint served by several processes (``mlops-assets serve --workers N``, supervisor.py).

A ``WorkerApp`` is the ``ScoringApp`` with its admin routes, ``/admin/status`` and ``/metrics`` made the
endpoint's rather than the process's, through the control folder (worker_control.py):

- A reload or a rollout, whichever worker receives it, changes every worker before it is acknowledged: the
  receiving worker takes the lock, loads and warms the target itself (a model that fails is never served, as in
  one process), then asks the others to prepare it. Only when every worker has the target's models loaded does it
  commit; each swaps them in, as one reference, and says so. The answer goes out once all have: after a 200, no
  worker answers with a version the change has left. A worker that cannot prepare aborts the change everywhere
  (500, every worker still serves what it served); one that cannot apply a committed change exits, and is
  restarted by the supervisor on the committed target. Requests answered during the change may come from either
  side of it, as during a reload in one process.
- A worker that starts (first, or after a crash) serves the last committed target, rollout included; the first
  worker of a fresh endpoint resolves the registry's champion once for all of them, so they serve one version.
- ``/metrics`` and ``/admin/status`` sum every worker's figures as of the request (each worker publishes them
  when asked, at most ``REFRESH_WAIT_S`` later), and those of workers that died (``retired``).

Each worker polls the control folder every ``POLL_S`` on its event loop: a few small file reads, off the
request path.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, NamedTuple

import orjson

from mlops_assets.serving.app import ScoringApp
from mlops_assets.serving.http import HttpError, respond
from mlops_assets.serving.loading import LoadedModel, ModelLoader
from mlops_assets.serving.routing import rollout_from_json
from mlops_assets.serving.settings import EndpointSettings
from mlops_assets.serving.telemetry import CONTENT_TYPE
from mlops_assets.serving.worker_control import (
    ABORT,
    ABORTED,
    APPLIED,
    COMMIT,
    FAILED,
    PREPARE,
    PREPARED,
    ControlFolder,
    alive,
    committed_target,
    desired_state,
)
from mlops_assets.serving.worker_metrics import (
    exposition,
    merge_arms,
    merge_log_status,
    merge_requests,
    merge_snapshots,
)

log = logging.getLogger(__name__)

POLL_S = 0.02  # how often a worker reads the control folder
PUBLISH_EVERY_S = 1.0  # a worker's figures are written at least this often, and whenever asked
REFRESH_WAIT_S = 0.5  # the most /metrics waits for the other workers' figures as of now


class Prepared(NamedTuple):
    champion: LoadedModel
    rollout: Any  # a Rollout, or None
    challenger: LoadedModel | None


class WorkerApp(ScoringApp):
    """Worker ``index`` of an endpoint whose workers share ``control``; ``admin_timeout_s``: how long a change
    waits for every worker to prepare it, then to apply it."""

    def __init__(self, settings: EndpointSettings, control: ControlFolder, index: int, admin_timeout_s: float = 300.0):
        super().__init__(settings)
        self.control, self.index, self.admin_timeout_s = control, index, admin_timeout_s
        self.generation = 0  # of the committed target this worker serves
        self._joined = False
        self._startup: Prepared | None = None
        self._pending: tuple[int, Prepared] | None = None
        self._handled: tuple[int, str | None] | None = None
        self._coordinating: int | None = None
        self._published_at, self._refresh = 0.0, 0
        self._watcher: asyncio.Task | None = None
        self._all_started = False
        self.telemetry.segment = f"w{index}"
        self._routes.update(
            {
                "/ping": ("GET", self._ping_all),
                "/health": ("GET", self._ping_all),
                "/admin/reload": ("POST", self._coordinated_reload),
                "/admin/rollout": ("POST", self._coordinated_rollout),
                "/admin/rollout/end": ("POST", self._coordinated_end),
                "/admin/status": ("GET", self._merged_status),
                "/metrics": ("GET", self._merged_metrics),
            }
        )

    # --- starting: serve the committed target -------------------------------------------------------------
    async def load(self, loader: ModelLoader | None = None) -> LoadedModel:
        if loader is None and not self._joined:  # the lifespan's startup
            self._joined = True
            return await self._join()
        return await super().load(loader)

    async def _join(self) -> LoadedModel:
        async with self.control.locked():
            desired = self.control.desired()
            committed = desired.get("committed")
            if committed is None:  # the first worker of this endpoint: resolve the champion for all of them
                champion = await super().load()
                generation = desired.get("generation", 0) + 1
                target = {"champion": champion.version, "rollout": None}
                self.control.write_desired(
                    desired_state(generation, COMMIT, target, committed_target(generation, target))
                )
                self.generation = self._coordinating = generation
                return champion
        self._startup = await self._prepare(committed["target"])
        self.generation = committed["generation"]
        return self._startup.champion

    async def _lifespan(self, receive: Callable, send: Callable) -> None:
        async def started(message: dict) -> None:
            if message["type"] == "lifespan.startup.complete":
                if self._startup is not None and self._startup.rollout is not None:
                    self._apply(self._startup)
                self._startup = None
                self.control.write_ack(self.index, self.generation, APPLIED)
                self._publish()
                self._watcher = asyncio.create_task(self._watch())
            elif message["type"] == "lifespan.shutdown.complete" and self._watcher is not None:
                self._watcher.cancel()
            await send(message)

        await super()._lifespan(receive, started)

    async def _ping_all(self, scope: dict, receive: Callable, send: Callable) -> None:
        """200 once every worker has started: before, a client sent to this address (the deployer, a readiness
        probe) could meet a worker still loading, whose connections wait in its socket's queue."""
        if not self._all_started:
            self._all_started = all(self.control.ack(i) for i in range(self.control.workers))
        await respond(send, 200 if self.current and self._all_started else 503, b"", content_type=None)

    # --- following the changes another worker coordinates -------------------------------------------------
    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            try:
                await self._follow(self.control.desired())
                token = self.control.refresh_token()
                if token != self._refresh or time.monotonic() - self._published_at >= PUBLISH_EVERY_S:
                    self._refresh = token
                    self._publish()
            except Exception:
                log.exception("worker %d: could not follow the control folder %s", self.index, self.control.path)

    async def _follow(self, desired: dict[str, Any]) -> None:
        generation, phase = desired.get("generation", 0), desired.get("phase")
        if (generation, phase) == self._handled or generation == self._coordinating or generation == 0:
            return
        self._handled = (generation, phase)
        if phase == PREPARE:
            try:
                self._pending = (generation, await self._prepare(desired["target"]))
            except Exception as exc:
                log.exception("worker %d could not prepare generation %d", self.index, generation)
                self._pending = None
                self.control.write_ack(self.index, generation, FAILED, error=repr(exc)[:2000])
                return
            self.control.write_ack(self.index, generation, PREPARED)
        elif phase == COMMIT and generation > self.generation:
            pending = self._pending[1] if self._pending and self._pending[0] == generation else None
            try:
                prepared = pending or await self._prepare(desired["target"])
            except Exception as exc:  # never serve what the endpoint has left: restart on the committed target
                log.exception("worker %d cannot apply generation %d; exiting to be restarted", self.index, generation)
                self.control.write_ack(self.index, generation, FAILED, error=repr(exc)[:2000])
                os.kill(os.getpid(), signal.SIGTERM)
                return
            arms = self._apply(prepared)
            self.generation, self._pending = generation, None
            self.control.write_ack(self.index, generation, APPLIED, arms=arms)
        elif phase == ABORT:
            self._pending = None
            self.control.write_ack(self.index, generation, ABORTED)

    async def _prepare(self, target: dict[str, Any]) -> Prepared:
        """The target's models, loaded and warmed (those this worker serves already are reused)."""
        state = self.state
        champion = state.current
        if champion is None or champion.version != target["champion"]:
            champion = await super().load(self._loader_of(target["champion"]))
        rollout, challenger = None, None
        if target.get("rollout"):
            rollout = rollout_from_json(target["rollout"])
            challenger = state.challenger
            if challenger is None or challenger.version != rollout.challenger_version:
                challenger = await super().load(self._loader_of(rollout.challenger_version))
        return Prepared(champion, rollout, challenger)

    def _loader_of(self, version: str) -> ModelLoader:
        version_loader, loader = self.settings.version_loader, self.settings.loader
        if version_loader is not None:
            return lambda: version_loader(version)

        def the_champion() -> LoadedModel:  # no version loader: the registry's champion must be that version
            loaded = loader()
            if loaded.version != version:
                raise RuntimeError(f"the champion is version {loaded.version}, not {version}")
            return loaded

        return the_champion

    def _apply(self, prepared: Prepared) -> dict[str, Any]:
        """Serve ``prepared`` from now on, in one swap; the arms' counters as they were, for a rollout's end."""
        final = self.state.document()["arms"]
        state = self.state.serving(prepared.champion)
        if prepared.rollout is not None:
            assert prepared.challenger is not None  # a rollout is prepared with its challenger
            state = state.rolling_out(prepared.rollout, prepared.challenger)
        self.state = state
        return final

    # --- coordinating a change this worker received ---------------------------------------------------------
    async def _change(self, make: Callable[[], Any]) -> tuple[Prepared, list[dict], dict]:
        """Under the lock: ``make()`` loads the target here (an ``HttpError`` changes nothing), every other worker
        prepares it, then all apply it. Returns what was applied, the others' acknowledgements and this worker's
        arms before the swap."""
        async with self.control.locked():
            desired = self.control.desired()
            generation = desired.get("generation", 0) + 1
            committed = desired.get("committed")
            prepared = await make()
            target = {
                "champion": prepared.champion.version,
                "rollout": None if prepared.rollout is None else _rollout_json(prepared.rollout),
            }
            self._coordinating = generation
            self.control.write_desired(desired_state(generation, PREPARE, target, committed))
            acks, failed = await self._wait(generation, {PREPARED})
            if failed:
                self.control.write_desired(desired_state(generation, ABORT, target, committed))
                reasons = "; ".join(f"worker {i}: {reason}" for i, reason in failed.items())
                raise HttpError(
                    500, f"not every worker could load the change, every one serves on as before: {reasons}"
                )
            self.control.write_desired(desired_state(generation, COMMIT, target, committed_target(generation, target)))
            arms = self._apply(prepared)
            self.generation = generation
            acks, failed = await self._wait(generation, {APPLIED})
            if failed:
                reasons = "; ".join(f"worker {i}: {reason}" for i, reason in failed.items())
                raise HttpError(503, f"the change is committed, but not every worker serves it yet: {reasons}")
            return prepared, acks, arms

    async def _wait(self, generation: int, phases: set[str]) -> tuple[list[dict], dict[int, str]]:
        """Every other worker's acknowledgement of ``generation`` in one of ``phases``; those that failed, or did
        not answer within ``admin_timeout_s``, by worker."""
        deadline = time.monotonic() + self.admin_timeout_s
        others = [i for i in range(self.control.workers) if i != self.index]
        while True:
            acks = {i: self.control.ack(i) for i in others}
            failed = {
                i: a.get("error", "failed")
                for i, a in acks.items()
                if a.get("generation") == generation and a.get("phase") == FAILED
            }
            done = [a for a in acks.values() if a.get("generation") == generation and a.get("phase") in phases]
            if failed or len(done) == len(others):
                return done, failed
            if time.monotonic() > deadline:
                late = [i for i, a in acks.items() if a not in done]
                return done, {i: f"no answer within {self.admin_timeout_s:.0f} s" for i in late}
            await asyncio.sleep(POLL_S / 2)

    async def _coordinated_reload(self, scope: dict, receive: Callable, send: Callable) -> None:
        self._authorize(scope)
        previous = self.state.current

        async def make() -> Prepared:
            try:
                return Prepared(await super(WorkerApp, self).load(), None, None)
            except Exception as exc:
                log.exception("reload failed; still serving the previous model")
                raise HttpError(500, f"could not load the new model, still serving the old one: {exc}") from None

        prepared, _, _ = await self._change(make)
        document = {"model_version": prepared.champion.version, "previous": previous.version if previous else None}
        await respond(send, 200, orjson.dumps(document))

    async def _coordinated_rollout(self, scope: dict, receive: Callable, send: Callable) -> None:
        self._authorize(scope)
        version_loader = self.settings.version_loader
        if version_loader is None:
            raise HttpError(400, "this endpoint was started without a version loader: it cannot run rollouts")
        body = await self.bodies.read(scope, receive)
        try:
            rollout = rollout_from_json(orjson.loads(body or b"{}"))
        except ValueError as exc:
            raise HttpError(400, f"invalid rollout: {exc}") from None

        async def make() -> Prepared:
            try:
                challenger = await super(WorkerApp, self).load(lambda: version_loader(rollout.challenger_version))
            except Exception as exc:
                log.exception("the challenger did not load; no rollout")
                raise HttpError(500, f"could not load challenger {rollout.challenger_version}: {exc}") from None
            champion = self.state.current
            assert champion is not None  # a worker answers requests once its startup loaded the champion
            return Prepared(champion, rollout, challenger)

        await self._change(make)
        await respond(send, 200, orjson.dumps(await self._status_of_all()))

    async def _coordinated_end(self, scope: dict, receive: Callable, send: Callable) -> None:
        self._authorize(scope)
        final: dict[str, Any] = {}

        async def make() -> Prepared:
            try:
                champion = await super(WorkerApp, self).load()
            except Exception as exc:
                raise HttpError(500, f"could not load the champion, the rollout goes on: {exc}") from None
            final.update(await self._status_of_all())  # after the load: requests routed meanwhile count
            return Prepared(champion, None, None)

        prepared, acks, arms = await self._change(make)
        final["arms"] = merge_arms([arms, *[ack.get("arms", {}) for ack in acks]])
        await respond(send, 200, orjson.dumps({**final, "model_version": prepared.champion.version}))

    # --- the endpoint's figures -----------------------------------------------------------------------------
    def _publish(self) -> None:
        self._published_at = time.monotonic()
        self.control.publish(self.index, self._figures(self._refresh))

    def _figures(self, refresh: int = 0) -> dict[str, Any]:
        current = self.state.current
        return {
            "worker": self.index,
            "pid": os.getpid(),
            "generation": self.generation,
            "refresh": refresh,
            "model_version": current.version if current else None,
            "snapshot": self.telemetry.snapshot(),
            "status": self._status_document(),
        }

    async def _others(self) -> list[dict[str, Any]]:
        """The other live workers' figures, published after this call began (or the latest, past a short wait)."""
        token = self.control.ask_refresh()
        deadline = time.monotonic() + REFRESH_WAIT_S
        while True:
            published = [self.control.figures(i) for i in range(self.control.workers) if i != self.index]
            others = [f for f in published if f is not None and alive(f["pid"])]
            if all(f["refresh"] >= token for f in others) or time.monotonic() > deadline:
                return others
            await asyncio.sleep(POLL_S / 4)

    async def _status_of_all(self) -> dict[str, Any]:
        own, others = self._status_document(), await self._others()
        statuses = [other["status"] for other in others]
        same = [other["status"]["arms"] for other in others if other["generation"] == self.generation]
        return {
            **own,
            "arms": merge_arms([own["arms"], *same]),
            "requests": merge_requests([own["requests"], *[s["requests"] for s in statuses]]),
            "log": merge_log_status([own["log"], *[s["log"] for s in statuses]]),
            "shadow_log": merge_log_status([own["shadow_log"], *[s["shadow_log"] for s in statuses]]),
            "workers": [_worker(f) for f in sorted([self._figures(), *others], key=lambda f: f["worker"])],
        }

    async def _merged_status(self, scope: dict, receive: Callable, send: Callable) -> None:
        self._authorize(scope)
        await respond(send, 200, orjson.dumps(await self._status_of_all()))

    async def _merged_metrics(self, scope: dict, receive: Callable, send: Callable) -> None:
        self._authorize_scoring(scope)
        others, own = await self._others(), self._figures()
        retired = self.control.retired()
        snapshots = [own["snapshot"], *[f["snapshot"] for f in others], *([retired] if retired else [])]
        served = self._telemetry_sources()["served"]
        workers = [_worker(f) for f in sorted([own, *others], key=lambda f: f["worker"])]
        await respond(send, 200, exposition(merge_snapshots(snapshots), served, workers), content_type=CONTENT_TYPE)


def _rollout_json(rollout: Any) -> dict[str, Any]:
    return {key: getattr(value, "value", value) for key, value in asdict(rollout).items()}


def _worker(figures: dict[str, Any]) -> dict[str, Any]:
    keys = ("worker", "pid", "generation", "model_version")
    return {key: figures[key] for key in keys}
