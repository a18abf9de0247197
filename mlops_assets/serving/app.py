"""The scoring endpoint: MLflow's scoring protocol as a bare ASGI app, the champion hot-swapped, every request logged.

``POST /invocations`` scores, ``GET /ping`` says whether a model is loaded, ``GET /version`` names the
model version and the code path serving it, and ``POST /admin/reload`` loads the current champion, checks
that it predicts, and swaps it in. The swap replaces one reference (``ServingState``): a request holds the
model and rollout it started with until it ends.

This module is the transport: routes, tokens, bodies read within their deadlines, answers, the lifespan, and
the logging scheduled after each answer. What one scoring request means (its body parsed, its rows checked
against the schema, its arm chosen, its rows scored and counted) is invocations.py's, tested without a socket.
A request's head must arrive within ``head_timeout_s`` and its body within ``body_timeout_s`` (deadlines.py):
a slow client is answered 408 and disconnected. Such a request, or one whose client went away mid-body, is the
client's: counted apart (``Telemetry.incomplete``), never as a scoring request the endpoint served, and scoring
latency runs from the moment the body is whole, so that slow clients cannot fail the endpoint's SLOs.
``GET /metrics`` shows the endpoint's telemetry in Prometheus' text format (telemetry.py): every answer by
route and status (the 408s and 400s the server gives before the app sees a request included), scoring
latency, rows scored per version and arm, and the logs' queues and losses. It needs the scoring token where
scoring does, never the admin token: a scraper must not be able to reload.

The app is a plain ASGI callable with a handful of routes rather than a Starlette app: for a single row the
framework's request, routing and response objects cost a share of the server's CPU per request that the
endpoint's sub-millisecond latency cannot spare (bench/RESULTS.md, "Serving", what each choice bought).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import orjson
from threadpoolctl import threadpool_limits

from mlops_assets import __version__
from mlops_assets.naming import CHALLENGER, Strategy
from mlops_assets.serving.body import BODY_WHOLE, BodyReader, IncompleteBody
from mlops_assets.serving.http import HttpError, authorize, header, respond, respond_error
from mlops_assets.serving.inference_log import InferenceLogWriter
from mlops_assets.serving.invocations import Invocation, Invocations, kept_score
from mlops_assets.serving.loading import FAST_PATH_MAX_ROWS, LoadedModel, ModelLoader
from mlops_assets.serving.payload import coerce_columns
from mlops_assets.serving.routing import rollout_from_json
from mlops_assets.serving.settings import EndpointSettings
from mlops_assets.serving.state import ServingState
from mlops_assets.serving.telemetry import CONTENT_TYPE, Telemetry

log = logging.getLogger(__name__)


def create_app(
    name: str,
    input_dtypes: dict[str, str],
    loader: ModelLoader,
    inference_log: InferenceLogWriter | None = None,
    **options: Any,
) -> ScoringApp:
    """``ScoringApp(EndpointSettings(name, input_dtypes, loader, inference_log, **options))``: the endpoint in
    one call, ``options`` being the settings' keyword fields (settings.py describes each)."""
    return ScoringApp(EndpointSettings(name, input_dtypes, loader, inference_log, **options))


class ScoringApp:
    """The ASGI app of one endpoint; ``current`` is the model being served (``None`` before startup)."""

    def __init__(self, settings: EndpointSettings):
        self.settings = settings
        self.bodies = BodyReader(settings.max_body_bytes, settings.body_timeout_s)
        self.state = ServingState()  # replaced whole, never changed in place
        self._routes = {
            "/invocations": ("POST", self._invocations),
            "/ping": ("GET", self._ping),
            "/health": ("GET", self._ping),
            "/version": ("GET", self._version),
            "/admin/reload": ("POST", self._reload),
            "/admin/rollout": ("POST", self._start_rollout),
            "/admin/rollout/end": ("POST", self._end_rollout),
            "/admin/status": ("GET", self._status),
            "/metrics": ("GET", self._metrics),
        }
        self.telemetry = Telemetry(self._routes, self._telemetry_sources)
        self.invocations = Invocations(settings, self.telemetry)
        # read on every scoring request: bound once here rather than looked up through the settings each time
        self.scoring_token = settings.scoring_token
        self.inference_log = settings.inference_log
        self.shadow_log = settings.shadow_log
        self._snapshots: asyncio.Task | None = None

    @property
    def current(self) -> LoadedModel | None:
        return self.state.current

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started, status, answered, incomplete = time.perf_counter(), None, None, False

        async def counted(message: dict) -> None:  # sees every answer, whichever path sent it
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = message["status"]
            elif not message.get("more_body"):
                answered = time.perf_counter()
            await send(message)

        method, handler = self._routes.get(scope["path"], (None, None))
        try:
            if handler is None:
                raise HttpError(404, f"no route {scope['path']}; try POST /invocations")
            if scope["method"] != method:
                raise HttpError(405, f"{scope['path']} answers {method} only")
            await handler(scope, receive, counted)
        except IncompleteBody as exc:  # the client's doing: counted apart from the requests the endpoint served
            incomplete = True
            if exc.answered:
                await respond_error(counted, exc.status, str(exc), exc.close)
        except HttpError as exc:
            await respond_error(counted, exc.status, str(exc), exc.close)
        except Exception:  # a bug: answered as MLflow answers errors, and the endpoint serves on
            log.exception("%s %s failed", scope["method"], scope["path"])
            with contextlib.suppress(Exception):  # unless the answer had already started
                await respond_error(counted, 500, f"the endpoint failed on {scope['path']}; see its log", close=True)
        finally:
            if incomplete:
                self.telemetry.incomplete(scope["path"], "body", status)
            else:  # from the moment the body was whole, for the routes that read one: the rest is the client's
                since = scope.get(BODY_WHOLE, started)
                self.telemetry.request(scope["path"], status, (answered or time.perf_counter()) - since)

    async def _invocations(self, scope: dict, receive: Callable, send: Callable) -> None:
        self._authorize_scoring(scope)
        state = self.state  # one view of what is served, whatever reload or rollout comes next
        if state.current is None:
            raise HttpError(503, "no model is loaded yet")
        body = await self.bodies.read(scope, receive)
        scored = self.invocations.score(body, header(scope, b"content-type"), state)
        if scored.error is not None:
            await respond_error(send, scored.status, scored.error)
            return
        assert scored.version is not None  # a scored request names the version that answered
        await respond(send, 200, scored.body, [(b"x-model-version", scored.version.encode())])
        try:  # after the response: no request waits on the log, and no failure here reaches a client
            self._log(scored, state)
        except Exception:
            log.exception("could not log a request scored by version %s", scored.version)

    def _log(self, scored: Invocation, state: ServingState) -> None:
        """Queue a scored request for the inference log, and score a shadow rollout's copy for the shadow log."""
        assert scored.columns is not None and scored.version is not None and scored.prediction is not None
        if self.inference_log is not None:
            score = kept_score(scored.prediction)
            self.inference_log.append(
                scored.columns,
                scored.n_rows,
                scored.version,
                scored.labels,
                score,
                None,
                scored.invalid,
                scored.features,
            )
        if scored.shadow is not None:
            shadow = self.invocations.shadow(scored, state.arms[CHALLENGER])
            if shadow is not None and self.shadow_log is not None:
                answered = scored.prediction.labels.tolist()
                self.shadow_log.append(
                    scored.columns,
                    scored.n_rows,
                    scored.shadow.version,
                    shadow.labels.tolist(),
                    kept_score(shadow),
                    answered,
                    scored.invalid,
                )

    async def _ping(self, scope: dict, receive: Callable, send: Callable) -> None:
        await respond(send, 200 if self.current else 503, b"", content_type=None)

    async def _version(self, scope: dict, receive: Callable, send: Callable) -> None:
        self._authorize_scoring(scope)
        current = self.current
        document = {
            "name": self.settings.name,
            "model_version": current.version if current else None,
            "path": current.path if current else None,
            "fast_path_check": current.fast_path_check if current else None,
            "fast_path_max_rows": FAST_PATH_MAX_ROWS,
            "mlops_assets": __version__,
        }
        await respond(send, 200, orjson.dumps(document))

    def _authorize(self, scope: dict) -> None:
        authorize(scope, self.settings.admin_token, "admin routes need 'Authorization: Bearer <MLOPS_ADMIN_TOKEN>'")

    def _authorize_scoring(self, scope: dict) -> None:
        message = "/invocations and /version need 'Authorization: Bearer <scoring token>' (so does /metrics)"
        authorize(scope, self.scoring_token, message)

    async def _metrics(self, scope: dict, receive: Callable, send: Callable) -> None:
        self._authorize_scoring(scope)
        await respond(send, 200, self.telemetry.exposition(), content_type=CONTENT_TYPE)

    def _telemetry_sources(self) -> dict:
        """What ``/metrics`` and the snapshots read when they are made, rather than count on the request path."""
        state = self.state
        rollout, current, challenger = state.rollout, state.current, state.challenger
        writers = (("inference", self.inference_log), ("shadow", self.shadow_log))
        return {
            "invalid_rows": self.invocations.requests.invalid_rows,
            "served": {
                "pipeline": self.settings.name,
                "model_version": current.version if current else None,
                "challenger_version": challenger.version if rollout and challenger else None,
                "rollout": rollout.mode if rollout else None,
                "share": rollout.share if rollout and rollout.mode != Strategy.shadow else 0.0,
            },
            "logs": {name: writer.status() for name, writer in writers if writer is not None},
        }

    async def _write_snapshots(self) -> None:
        """A telemetry snapshot beside the inference log every ``telemetry_interval_s``, until cancelled."""
        while True:
            await asyncio.sleep(self.settings.telemetry_interval_s)
            snapshot = self.telemetry.snapshot()  # on the loop's thread, which alone adds to the counters
            await asyncio.to_thread(self._write_snapshot, snapshot)

    def _write_snapshot(self, snapshot: dict | None = None) -> None:
        assert self.inference_log is not None  # snapshots are written beside the inference log alone
        directory = self.inference_log.directory
        try:  # a snapshot that cannot be written is missed, and the endpoint serves on
            self.telemetry.write_snapshot(directory, snapshot or self.telemetry.snapshot())
        except Exception:
            log.exception("could not write a telemetry snapshot to %s", directory)

    async def _reload(self, scope: dict, receive: Callable, send: Callable) -> None:
        """Serve the registry's champion alone (a running rollout ends), and the feature views' newest online
        tables."""
        self._authorize(scope)
        if self.settings.feature_views is not None and self.settings.feature_views.store is not None:
            await asyncio.to_thread(self.settings.feature_views.refresh)
        try:
            loaded = await self.load()
        except Exception as exc:
            log.exception("reload failed; still serving the previous model")
            raise HttpError(500, f"could not load the new model, still serving the old one: {exc}") from None
        previous = self.state.current
        self.state = self.state.serving(loaded)
        document = {"model_version": loaded.version, "previous": previous.version if previous else None}
        await respond(send, 200, orjson.dumps(document))

    async def _start_rollout(self, scope: dict, receive: Callable, send: Callable) -> None:
        """Load the challenger version (warmed like any model), then route to it; counters start at zero.
        A body that is not a valid rollout is refused before anything changes."""
        self._authorize(scope)
        if self.settings.version_loader is None:
            raise HttpError(400, "this endpoint was started without a version loader: it cannot run rollouts")
        body = await self.bodies.read(scope, receive)
        try:
            rollout = rollout_from_json(orjson.loads(body or b"{}"))
        except ValueError as exc:  # orjson's JSONDecodeError is one
            raise HttpError(400, f"invalid rollout: {exc}") from None
        version_loader = self.settings.version_loader
        try:
            challenger = await self.load(lambda: version_loader(rollout.challenger_version))
        except Exception as exc:
            log.exception("the challenger did not load; no rollout")
            raise HttpError(500, f"could not load challenger {rollout.challenger_version}: {exc}") from None
        self.state = self.state.rolling_out(rollout, challenger)  # arms count from here; requests: since start
        await self._status(scope, receive, send)

    async def _end_rollout(self, scope: dict, receive: Callable, send: Callable) -> None:
        """Back to the registry's champion alone (promoted or not); answers the final counters."""
        self._authorize(scope)
        try:
            champion = await self.load()
        except Exception as exc:
            raise HttpError(500, f"could not load the champion, the rollout goes on: {exc}") from None
        final = self._status_document()  # after the load: requests routed meanwhile count
        self.state = self.state.serving(champion)
        await respond(send, 200, orjson.dumps({**final, "model_version": champion.version}))

    def _status_document(self) -> dict:
        return {
            **self.state.document(),
            "requests": asdict(self.invocations.requests),
            "on_invalid": self.settings.on_invalid,
            "log": None if self.inference_log is None else self.inference_log.status(),
            "shadow_log": None if self.shadow_log is None else self.shadow_log.status(),
        }

    async def _status(self, scope: dict, receive: Callable, send: Callable) -> None:
        self._authorize(scope)
        await respond(send, 200, orjson.dumps(self._status_document()))

    async def load(self, loader: ModelLoader | None = None) -> LoadedModel:
        """Call the loader and score one row with the result: a model that cannot predict is never served.

        The row has every input null (numbers are filled with the training mean, categories are unseen).
        It is scored on the event loop's thread, which scores every request, and OpenMP is limited to that
        one thread (the limit is per calling thread): a second OpenMP thread made no row faster but spun a
        core at 100% between requests, and a team left in an idle executor thread made each later
        HistGradientBoosting predict several times slower (bench/RESULTS.md).
        """
        loader = loader or self.settings.loader

        def load_single_threaded() -> LoadedModel:
            with threadpool_limits(1, user_api="openmp"):  # the fast-path check predicts too: no team here
                return loader()

        loaded = await asyncio.to_thread(load_single_threaded)  # registry and artifact I/O, off the event loop
        threadpool_limits(1, user_api="openmp")
        input_dtypes = self.settings.input_dtypes
        missing = sorted(set(loaded.model.input_columns) - set(input_dtypes))
        if missing:
            raise RuntimeError(f"model version {loaded.version} needs columns {missing} the endpoint does not take")
        sample = coerce_columns({name: [None] for name in input_dtypes}, input_dtypes).columns
        try:
            labels = loaded.predict(sample, 1).labels
        except Exception as exc:
            raise RuntimeError(f"model version {loaded.version} failed to predict a sample row: {exc!r}") from exc
        if len(labels) != 1:
            raise RuntimeError(f"model version {loaded.version} gave {len(labels)} predictions for one sample row")
        return loaded

    async def _lifespan(self, receive: Callable, send: Callable) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.state = self.state.serving(await self.load())
                except Exception as exc:
                    log.exception("could not load the model")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                if self.inference_log is not None and self.settings.telemetry_interval_s > 0:
                    self._snapshots = asyncio.create_task(self._write_snapshots())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                writers = [writer for writer in (self.inference_log, self.shadow_log) if writer is not None]
                _each(writers, "stop")
                if self._snapshots is not None:
                    self._snapshots.cancel()
                    self._write_snapshot()  # the last figures, the logs' included once they are flushed
                _each(writers, "close")  # ships the snapshot with the log
                await send({"type": "lifespan.shutdown.complete"})
                return


def _each(writers: list[InferenceLogWriter], step: str) -> None:
    """Call the method ``step`` of each writer: one log that cannot write must not keep the other from
    flushing or shipping."""
    for writer in writers:
        try:
            getattr(writer, step)()
        except Exception:
            log.exception("could not %s the log in %s", step, getattr(writer, "directory", writer))
