"""The logic of one scoring request (``POST /invocations``), apart from the transport that carries it.

As MLflow's scoring server keeps ``invocations(data, content_type, model, input_schema)`` beside its web
framework, ``Invocations.score`` takes a body's bytes, its content type and what the endpoint serves at that
moment (``ServingState``), and returns an ``Invocation``: the status and body to answer, and what the logs keep.
No socket and no ASGI: app.py reads the body within its deadline, sends the answer, and only then logs it and
scores a shadow copy, so that no client waits on either.

Each row is checked against the spec's column rules (row_checks.py): ``on_invalid="reject"`` answers 400
naming the row, column and rule; ``"flag"`` scores the row (a value of the wrong type as a missing one) and
marks it in the log's ``invalid`` column. Columns the model does not take are ignored, as MLflow ignores them,
and counted in ``/admin/status``. For one scoring request in ``skew_sample_every`` the inference log keeps the
features the served model computed (inference_log.py, ``FEATURES``), for the training/serving skew check.
With ``feature_views`` the features of the spec's views are looked up by the request's entity keys first
(view_lookup.py): a missing or stale entity breaks its row as a broken rule does.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import numpy as np
import orjson

from mlops_assets.errors import PayloadError
from mlops_assets.model.pipeline_model import Prediction
from mlops_assets.naming import CHALLENGER, CHAMPION, OnInvalid, Strategy
from mlops_assets.serving.inference_log import OneIn
from mlops_assets.serving.loading import LoadedModel
from mlops_assets.serving.payload import coerce_columns, parse_payload
from mlops_assets.serving.routing import ArmStats, choose_arm
from mlops_assets.serving.row_checks import RowChecks, RowReport, SchemaRejection, rejection_causes
from mlops_assets.serving.settings import EndpointSettings
from mlops_assets.serving.state import RequestCounts, ServingState
from mlops_assets.serving.telemetry import Telemetry

log = logging.getLogger(__name__)

REPORTED_VIOLATIONS = 5  # named in a 400; the rest are counted


class Invocation(NamedTuple):
    """One scoring request's outcome: the answer, and for a scored request what the logs keep of it.

    A NamedTuple: immutable, and cheap enough to build on every request of an endpoint that answers in well
    under a millisecond."""

    status: int
    body: bytes = b""  # the predictions, as MLflow's scoring protocol answers them (status 200)
    error: str | None = None  # what is wrong, for the client (any other status)
    version: str | None = None  # the model version that answered (the ``X-Model-Version`` header)
    columns: dict[str, Any] | None = None  # the inputs typed for the model, with the row id
    n_rows: int = 0
    labels: list | None = None  # the predictions as answered
    prediction: Prediction | None = None
    invalid: list[str | None] | None = None  # why each row breaks the schema (flag); None: every row is valid
    features: np.ndarray | None = None  # the served model's features, for a request the skew sample takes
    shadow: LoadedModel | None = None  # the challenger of a shadow rollout, to score a copy once answered


class Invocations:
    """Scores requests with the model a ``ServingState`` serves, and counts them: the requests accepted and
    rejected (``requests``, for ``/admin/status``), the rows of each arm, and the telemetry's rejections and
    rows scored. One per endpoint, built at startup; every request runs on the event loop's one thread."""

    def __init__(self, settings: EndpointSettings, telemetry: Telemetry):
        id_column = settings.id_column
        self.input_dtypes, self.id_column = settings.input_dtypes, id_column
        checked = {**settings.input_dtypes, **({id_column: "str"} if id_column else {})}
        self.checks = RowChecks(checked, settings.schema, optional=[id_column] if id_column else [])
        self.flag = settings.on_invalid == OnInvalid.flag
        self.known_columns = frozenset(checked)  # any other column a request sends is ignored, and counted
        self.requests = RequestCounts()  # since the endpoint started: the rejections the log never sees
        self.skew_sample = OneIn(settings.skew_sample_every)  # the scoring requests whose features are logged
        self.telemetry = telemetry
        self.views = settings.feature_views  # adds the view features a request's entity keys look up

    def score(self, body: bytes, content_type: str | None, state: ServingState) -> Invocation:
        """Parse ``body``, check its rows, route it to an arm of ``state``'s rollout and score it: 200 with the
        predictions, 400 for a body that cannot be scored, 500 when the model fails. ``state`` serves a model
        (``state.current``): the transport answers 503 before it reads a body otherwise."""
        try:
            parsed, columns, n_rows, report = self._parse(body, content_type)
        except PayloadError as exc:
            message = str(exc)
            self.requests.rejected += 1
            self.requests.last_rejection = message[:300]
            self.telemetry.rejected(rejection_causes(exc))  # by column and rule, for the schema_break check
            return Invocation(400, error=message)
        self.requests.accepted += 1
        invalid = None
        if report is not None:
            self.requests.invalid_rows += report.invalid_rows
            invalid = report.reasons
        current, rollout, challenger = state.current, state.rollout, state.challenger
        assert current is not None  # the transport answered 503 otherwise
        if not parsed.keys() <= self.known_columns:
            self.requests.ignored(parsed.keys() - self.known_columns - {rollout.sticky_key if rollout else None})
        arm = CHAMPION
        if rollout is not None and challenger is not None:
            key = parsed.get(rollout.sticky_key or "", [None])[0] if n_rows == 1 else None
            arm = choose_arm(rollout, None if key is None else str(key))
            current = challenger if arm == CHALLENGER else current
        stats = state.arms[arm]
        stats.requests += 1
        stats.rows += n_rows
        try:
            prediction = current.predict(columns, n_rows)
        except Exception as exc:
            stats.errors += 1
            log.exception("model version %s failed to predict", current.version)
            return Invocation(500, error=f"model version {current.version} failed to predict: {exc}")
        self.telemetry.scored(current.version, arm, n_rows)
        features = prediction.features if self.skew_sample.take() else None
        labels = prediction.labels.tolist()
        answer = orjson.dumps({"predictions": labels}, option=orjson.OPT_SERIALIZE_NUMPY)
        shadow = challenger if rollout is not None and rollout.mode == Strategy.shadow else None
        return Invocation(
            200, answer, None, current.version, columns, n_rows, labels, prediction, invalid, features, shadow
        )

    def _parse(self, body: bytes, content_type: str | None) -> tuple[dict, dict, int, RowReport | None]:
        """The request's columns as sent, typed for the model (with the row id), the row count, and the rows
        that break the schema (``None``: none do); raise ``PayloadError`` for a request that cannot be scored."""
        parsed = parse_payload(body, content_type)
        looked_up = self.views.add(parsed) if self.views is not None else None  # a row without a valid value: broken
        columns, n_rows, numeric, type_violations = coerce_columns(parsed, self.input_dtypes)
        if looked_up:
            type_violations = [*type_violations, *looked_up]
        if self.id_column is not None:
            ids = parsed.get(self.id_column)
            columns[self.id_column] = [None] * n_rows if ids is None else [None if v is None else str(v) for v in ids]
        limit = None if self.flag else REPORTED_VIOLATIONS + 1
        report = self.checks.check(columns, numeric, n_rows, type_violations, limit)
        if report is not None and not self.flag:
            named = "; ".join(str(v) for v in report.violations[:REPORTED_VIOLATIONS])
            more = "; ..." if len(report.violations) > REPORTED_VIOLATIONS else ""
            raise SchemaRejection(
                f"{report.invalid_rows} of {n_rows} row(s) break the schema: {named}{more} "
                "(deployment.on_invalid: reject)",
                report.causes(),
            )
        return parsed, columns, n_rows, report

    def shadow(self, scored: Invocation, stats: ArmStats) -> Prediction | None:
        """Score a copy of a request the champion answered with ``scored.shadow``, counting into ``stats``;
        the challenger's prediction, never returned to the client (``None`` when it failed). Regression
        answers count as different beyond floating-point noise."""
        challenger, n_rows = scored.shadow, scored.n_rows
        assert challenger is not None and scored.columns is not None and scored.prediction is not None  # scored
        stats.requests += 1
        stats.rows += n_rows
        try:
            shadow = challenger.predict(scored.columns, n_rows)
        except Exception:
            stats.errors += 1
            log.exception("shadow model version %s failed to predict", challenger.version)
            return None
        self.telemetry.scored(challenger.version, "shadow", n_rows)
        answered = scored.prediction.labels
        differs = ~np.isclose(shadow.labels, answered) if answered.dtype.kind == "f" else shadow.labels != answered
        stats.disagreements += int(np.sum(differs))
        return shadow


def kept_score(prediction: Prediction) -> np.ndarray:
    """What the log keeps of the probabilities: the positive class's, or the winning class's."""
    proba = prediction.proba
    if proba is None:
        return np.full(len(prediction.labels), np.nan)
    return proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1)
