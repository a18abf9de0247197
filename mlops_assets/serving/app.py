"""The scoring endpoint: MLflow's scoring protocol as a bare ASGI app, the champion hot-swapped, every request logged.

``POST /invocations`` scores, ``GET /ping`` says whether a model is loaded, ``GET /version`` names the
model version and the code path serving it, and ``POST /admin/reload`` loads the current champion, checks
that it predicts, and swaps it in. The swap replaces one reference (``ServingState``): a request holds the
model and rollout it started with until it ends.

Each row is checked against the spec's column rules (row_checks.py): ``on_invalid="reject"`` answers 400
naming the row, column and rule; ``"flag"`` scores the row (a value of the wrong type as a missing one) and
marks it in the log's ``invalid`` column.
Columns the model does not take are ignored, as MLflow ignores them, and counted in ``/admin/status``.
A request's head must arrive within ``head_timeout_s`` and its body within ``body_timeout_s`` (deadlines.py):
a slow client is answered 408 and disconnected. Such a request, or one whose client went away mid-body, is the
client's: counted apart (``Telemetry.incomplete``), never as a scoring request the endpoint served, and scoring
latency runs from the moment the body is whole, so that slow clients cannot fail the endpoint's SLOs.
``GET /metrics`` shows the endpoint's telemetry in Prometheus' text format (telemetry.py): every answer by
route and status (the 408s and 400s the server gives before the app sees a request included), scoring
latency, rows scored per version and arm, and the logs' queues and losses. It needs the scoring token where
scoring does, never the admin token: a scraper must not be able to reload.
For one scoring request in ``skew_sample_every`` the inference log keeps the features the served model
computed (inference_log.py, ``FEATURES``), for the training/serving skew check.

The app is a plain ASGI callable with a handful of routes rather than a Starlette app: for a single row the
framework's request, routing and response objects cost 50-70 µs of server CPU per request, 12-18% of the
whole (bench/RESULTS.md, "Serving").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict

import numpy as np
import orjson
from threadpoolctl import threadpool_limits

from mlops_assets import __version__
from mlops_assets.errors import PayloadError
from mlops_assets.model.pipeline_model import Prediction
from mlops_assets.naming import CHALLENGER, CHAMPION
from mlops_assets.rollout.routing import ArmStats, choose_arm, rollout_from_json
from mlops_assets.serving.body import BODY_WHOLE, BodyReader, IncompleteBody
from mlops_assets.serving.http import HttpError, authorize, header, respond, respond_error
from mlops_assets.serving.inference_log import InferenceLogWriter, OneIn
from mlops_assets.serving.loading import FAST_PATH_MAX_ROWS, LoadedModel, ModelLoader, VersionLoader
from mlops_assets.serving.payload import coerce_columns, parse_payload
from mlops_assets.serving.row_checks import ColumnRules, RowChecks, RowReport, SchemaRejection, rejection_causes
from mlops_assets.serving.state import RequestCounts, ServingState
from mlops_assets.serving.telemetry import CONTENT_TYPE, Telemetry

log = logging.getLogger(__name__)

ON_INVALID = ("reject", "flag")  # what a row that breaks the schema gets (the spec's deployment.on_invalid)
REPORTED_VIOLATIONS = 5  # named in a 400; the rest are counted


def create_app(
    name: str,
    input_dtypes: dict[str, str],
    loader: ModelLoader,
    inference_log: InferenceLogWriter | None = None,
    *,
    admin_token: str | None = None,
    scoring_token: str | None = None,
    max_body_bytes: int = 16 * 1024 * 1024,
    id_column: str | None = None,
    version_loader: VersionLoader | None = None,
    shadow_log: InferenceLogWriter | None = None,
    schema: Mapping[str, ColumnRules] | None = None,
    on_invalid: str = "reject",
    head_timeout_s: float = 10.0,
    body_timeout_s: float = 30.0,
    telemetry_interval_s: float = 60.0,
    skew_sample_every: int | None = None,
) -> ScoringApp:
    """``input_dtypes`` maps each required input column to its spec dtype (``float``/``int``/``str``...).

    A request may carry ``id_column`` (optional, not a feature): it is logged, so labels that arrive later
    can be joined to the predictions. A body over ``max_body_bytes`` gets a 413 without being read whole.
    ``version_loader`` loads a given version: it enables canary, shadow and ab rollouts (``/admin/rollout``);
    a shadow model's answers go to ``shadow_log``. Admin routes need ``admin_token`` as a bearer token when
    it is set, scoring routes need ``scoring_token`` when that is set.

    ``schema`` holds the rules of the input columns and the id (``row_checks.column_rules(spec.schema_.columns)``;
    a column without rules is checked for its dtype only, and may be null); ``on_invalid`` is ``reject`` or
    ``flag``. A request's head must arrive within ``head_timeout_s`` (``run`` applies it), its body within
    ``body_timeout_s`` of the head. Every ``telemetry_interval_s`` (and at shutdown) a telemetry snapshot is
    written beside the inference log (``0``: never). The inference log keeps the features of the first
    scoring request and one in ``skew_sample_every`` after it (``spec.monitoring.skew.sample_every``; ``None``:
    of none).
    """
    if on_invalid not in ON_INVALID:
        raise ValueError(f"on_invalid must be one of {list(ON_INVALID)}; got {on_invalid!r}")
    return ScoringApp(
        name,
        input_dtypes,
        loader,
        inference_log,
        admin_token=admin_token,
        scoring_token=scoring_token,
        max_body_bytes=max_body_bytes,
        id_column=id_column,
        version_loader=version_loader,
        shadow_log=shadow_log,
        schema=schema or {},
        on_invalid=on_invalid,
        head_timeout_s=head_timeout_s,
        body_timeout_s=body_timeout_s,
        telemetry_interval_s=telemetry_interval_s,
        skew_sample_every=skew_sample_every,
    )


class ScoringApp:
    """The ASGI app ``create_app`` returns; ``current`` is the model being served (``None`` before startup)."""

    def __init__(
        self,
        name: str,
        input_dtypes: dict[str, str],
        loader: ModelLoader,
        inference_log: InferenceLogWriter | None,
        *,
        admin_token: str | None,
        scoring_token: str | None,
        max_body_bytes: int,
        id_column: str | None,
        version_loader: VersionLoader | None,
        shadow_log: InferenceLogWriter | None,
        schema: Mapping[str, ColumnRules],
        on_invalid: str,
        head_timeout_s: float,
        body_timeout_s: float,
        telemetry_interval_s: float = 60.0,
        skew_sample_every: int | None = None,
    ):
        self.name, self.input_dtypes, self.loader = name, input_dtypes, loader
        checked = {**input_dtypes, **({id_column: "str"} if id_column else {})}
        self.checks = RowChecks(checked, schema, optional=[id_column] if id_column else [])
        self.on_invalid = on_invalid
        self.known_columns = frozenset(checked)  # any other column a request sends is ignored, and counted
        self.head_timeout_s = head_timeout_s  # run() gives it to the server: the app never sees a head
        self.bodies = BodyReader(max_body_bytes, body_timeout_s)
        self.version_loader = version_loader
        self.state = ServingState()  # replaced whole, never changed in place
        self.requests = RequestCounts()  # since the endpoint started: the rejections the log never sees
        self.inference_log, self.shadow_log, self.id_column = inference_log, shadow_log, id_column
        self.skew_sample = OneIn(skew_sample_every)  # the scoring requests whose features are logged
        self.admin_token, self.scoring_token = admin_token, scoring_token
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
        self.telemetry_interval_s = telemetry_interval_s
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
        current = state.current
        if current is None:
            raise HttpError(503, "no model is loaded yet")
        body = await self.bodies.read(scope, receive)
        try:
            parsed, columns, n_rows, report = self._parse(scope, body)
        except PayloadError as exc:
            self.requests.rejected += 1
            self.requests.last_rejection = str(exc)[:300]
            self.telemetry.rejected(rejection_causes(exc))  # by column and rule, for the schema_break check
            raise HttpError(400, str(exc)) from None
        self.requests.accepted += 1
        invalid = None
        if report is not None:
            self.requests.invalid_rows += report.invalid_rows
            invalid = report.reasons
        rollout, challenger, arms = state.rollout, state.challenger, state.arms
        if not parsed.keys() <= self.known_columns:
            self.requests.ignored(parsed.keys() - self.known_columns - {rollout.sticky_key if rollout else None})
        arm = CHAMPION
        if rollout is not None and challenger is not None:
            key = parsed.get(rollout.sticky_key or "", [None])[0] if n_rows == 1 else None
            arm = choose_arm(rollout, None if key is None else str(key))
            current = challenger if arm == CHALLENGER else current
        stats = arms[arm]
        stats.requests += 1
        stats.rows += n_rows
        try:
            prediction = current.predict(columns, n_rows)
        except Exception as exc:
            stats.errors += 1
            log.exception("model version %s failed to predict", current.version)
            raise HttpError(500, f"model version {current.version} failed to predict: {exc}") from None
        self.telemetry.scored(current.version, arm, n_rows)
        features = prediction.features if self.skew_sample.take() else None
        labels = prediction.labels.tolist()
        answer = orjson.dumps({"predictions": labels}, option=orjson.OPT_SERIALIZE_NUMPY)
        await respond(send, 200, answer, [(b"x-model-version", current.version.encode())])
        try:  # after the response: no request waits on the log, and no failure here reaches a client
            if self.inference_log is not None:
                score = kept_score(prediction)
                self.inference_log.append(columns, n_rows, current.version, labels, score, None, invalid, features)
            if rollout is not None and rollout.mode == "shadow" and challenger is not None:
                self._shadow(challenger, arms[CHALLENGER], columns, n_rows, prediction.labels, invalid)
        except Exception:
            log.exception("could not log a request scored by version %s", current.version)

    def _parse(self, scope: dict, body: bytes) -> tuple[dict, dict, int, RowReport | None]:
        """The request's columns as sent, typed for the model (with the row id), the row count, and the rows
        that break the schema (``None``: none do); raise ``PayloadError`` for a request that cannot be scored."""
        parsed = parse_payload(body, header(scope, b"content-type"))
        columns, n_rows, numeric, type_violations = coerce_columns(parsed, self.input_dtypes)
        if self.id_column is not None:
            ids = parsed.get(self.id_column)
            columns[self.id_column] = [None] * n_rows if ids is None else [None if v is None else str(v) for v in ids]
        flag = self.on_invalid == "flag"
        limit = None if flag else REPORTED_VIOLATIONS + 1
        report = self.checks.check(columns, numeric, n_rows, type_violations, limit)
        if report is not None and not flag:
            named = "; ".join(str(v) for v in report.violations[:REPORTED_VIOLATIONS])
            more = "; ..." if len(report.violations) > REPORTED_VIOLATIONS else ""
            raise SchemaRejection(
                f"{report.invalid_rows} of {n_rows} row(s) break the schema: {named}{more} "
                "(deployment.on_invalid: reject)",
                report.causes(),
            )
        return parsed, columns, n_rows, report

    def _shadow(
        self,
        challenger: LoadedModel,
        stats: ArmStats,
        columns: dict,
        n_rows: int,
        answered: np.ndarray,
        invalid: list[str | None] | None,
    ) -> None:
        """Score a copy with the challenger after the response went out; log and count, never return, its
        answers. Regression answers count as different beyond floating-point noise."""
        stats.requests += 1
        stats.rows += n_rows
        try:
            shadow = challenger.predict(columns, n_rows)
        except Exception:
            stats.errors += 1
            log.exception("shadow model version %s failed to predict", challenger.version)
            return
        self.telemetry.scored(challenger.version, "shadow", n_rows)
        differs = ~np.isclose(shadow.labels, answered) if answered.dtype.kind == "f" else shadow.labels != answered
        stats.disagreements += int(np.sum(differs))
        if self.shadow_log is not None:
            labels = shadow.labels.tolist()
            self.shadow_log.append(
                columns, n_rows, challenger.version, labels, kept_score(shadow), answered.tolist(), invalid
            )

    async def _ping(self, scope: dict, receive: Callable, send: Callable) -> None:
        await respond(send, 200 if self.current else 503, b"", content_type=None)

    async def _version(self, scope: dict, receive: Callable, send: Callable) -> None:
        self._authorize_scoring(scope)
        current = self.current
        document = {
            "name": self.name,
            "model_version": current.version if current else None,
            "path": current.path if current else None,
            "fast_path_check": current.fast_path_check if current else None,
            "fast_path_max_rows": FAST_PATH_MAX_ROWS,
            "mlops_assets": __version__,
        }
        await respond(send, 200, orjson.dumps(document))

    def _authorize(self, scope: dict) -> None:
        authorize(scope, self.admin_token, "admin routes need 'Authorization: Bearer <MLOPS_ADMIN_TOKEN>'")

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
            "invalid_rows": self.requests.invalid_rows,
            "served": {
                "pipeline": self.name,
                "model_version": current.version if current else None,
                "challenger_version": challenger.version if rollout and challenger else None,
                "rollout": rollout.mode if rollout else None,
                "share": rollout.share if rollout and rollout.mode != "shadow" else 0.0,
            },
            "logs": {name: writer.status() for name, writer in writers if writer is not None},
        }

    async def _write_snapshots(self) -> None:
        """A telemetry snapshot beside the inference log every ``telemetry_interval_s``, until cancelled."""
        while True:
            await asyncio.sleep(self.telemetry_interval_s)
            snapshot = self.telemetry.snapshot()  # on the loop's thread, which alone adds to the counters
            await asyncio.to_thread(self._write_snapshot, snapshot)

    def _write_snapshot(self, snapshot: dict | None = None) -> None:
        directory = self.inference_log.directory
        try:  # a snapshot that cannot be written is missed, and the endpoint serves on
            self.telemetry.write_snapshot(directory, snapshot or self.telemetry.snapshot())
        except Exception:
            log.exception("could not write a telemetry snapshot to %s", directory)

    async def _reload(self, scope: dict, receive: Callable, send: Callable) -> None:
        """Serve the registry's champion alone (a running rollout ends)."""
        self._authorize(scope)
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
        if self.version_loader is None:
            raise HttpError(400, "this endpoint was started without a version loader: it cannot run rollouts")
        body = await self.bodies.read(scope, receive)
        try:
            rollout = rollout_from_json(orjson.loads(body or b"{}"))
        except ValueError as exc:  # orjson's JSONDecodeError is one
            raise HttpError(400, f"invalid rollout: {exc}") from None
        version_loader = self.version_loader
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
            "requests": asdict(self.requests),
            "on_invalid": self.on_invalid,
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
        HistGradientBoosting predict 3.5 times slower (bench/RESULTS.md).
        """
        loader = loader or self.loader

        def load_single_threaded() -> LoadedModel:
            with threadpool_limits(1, user_api="openmp"):  # the fast-path check predicts too: no team here
                return loader()

        loaded = await asyncio.to_thread(load_single_threaded)  # registry and artifact I/O, off the event loop
        threadpool_limits(1, user_api="openmp")
        missing = sorted(set(loaded.model.input_columns) - set(self.input_dtypes))
        if missing:
            raise RuntimeError(f"model version {loaded.version} needs columns {missing} the endpoint does not take")
        sample = coerce_columns({name: [None] for name in self.input_dtypes}, self.input_dtypes).columns
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
                if self.inference_log is not None and self.telemetry_interval_s > 0:
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


def kept_score(prediction: Prediction) -> np.ndarray:
    """What the log keeps of the probabilities: the positive class's, or the winning class's."""
    proba = prediction.proba
    if proba is None:
        return np.full(len(prediction.labels), np.nan)
    return proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1)
