"""The scoring endpoint: MLflow's scoring protocol on Starlette, the champion hot-swapped, every request logged.

``POST /invocations`` scores, ``GET /ping`` says whether a model is loaded, ``GET /version`` names the
model version and the code path serving it, and ``POST /admin/reload`` loads the current champion and
swaps it in. The swap replaces one reference: a request holds the model it started with until it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mlops_assets import __version__
from mlops_assets.errors import PayloadError
from mlops_assets.inference_log import InferenceLogWriter
from mlops_assets.model import PipelineModel
from mlops_assets.payload import coerce_columns, parse_payload

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    version: str
    model: PipelineModel


ModelLoader = Callable[[], LoadedModel]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"error_code": "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR", "message": message},
        status_code=status,
    )


def create_app(
    name: str,
    input_dtypes: dict[str, str],
    loader: ModelLoader,
    inference_log: InferenceLogWriter | None = None,
    admin_token: str | None = None,
    max_body_bytes: int = 16 * 1024 * 1024,
    id_column: str | None = None,
) -> Starlette:
    """``input_dtypes`` maps each required input column to its spec dtype (``float``/``int``/``str``...).

    A request may carry ``id_column`` (optional, not a feature): it is logged, so labels that arrive later
    can be joined to the predictions.
    """
    state: dict[str, LoadedModel | None] = {"current": None}

    async def ping(request: Request) -> Response:
        return Response(status_code=200 if state["current"] else 503)

    async def version(request: Request) -> Response:
        current = state["current"]
        return JSONResponse(
            {
                "name": name,
                "model_version": current.version if current else None,
                "path": "python",
                "mlops_assets": __version__,
            }
        )

    async def invocations(request: Request) -> Response:
        current = state["current"]
        if current is None:
            return _error(503, "no model is loaded yet")
        if int(request.headers.get("content-length") or 0) > max_body_bytes:
            return _error(413, f"request body over the limit of {max_body_bytes} bytes")
        body = await request.body()
        try:
            parsed = parse_payload(body)
            columns, n_rows = coerce_columns(parsed, input_dtypes)
        except PayloadError as exc:
            return _error(400, str(exc))
        if id_column is not None:
            ids = parsed.get(id_column) or [None] * n_rows
            columns[id_column] = [None if v is None else str(v) for v in ids][:n_rows]
        prediction = current.model.predict(columns)
        labels = prediction.labels
        if inference_log is not None:
            score = prediction.proba.max(axis=1) if prediction.proba is not None else np.full(n_rows, np.nan)
            if prediction.proba is not None and prediction.proba.shape[1] == 2:
                score = prediction.proba[:, 1]
            inference_log.append(columns, n_rows, current.version, labels.tolist(), score)
        return JSONResponse({"predictions": labels.tolist()}, headers={"X-Model-Version": current.version})

    async def reload(request: Request) -> Response:
        if admin_token and request.headers.get("authorization") != f"Bearer {admin_token}":
            return _error(401, "admin routes need 'Authorization: Bearer <MLOPS_ADMIN_TOKEN>'")
        try:
            loaded = await asyncio.to_thread(loader)
        except Exception as exc:
            log.exception("reload failed; still serving the previous model")
            return _error(500, f"could not load the new model, still serving the old one: {exc}")
        previous, state["current"] = state["current"], loaded
        return JSONResponse({"model_version": loaded.version, "previous": previous.version if previous else None})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        state["current"] = await asyncio.to_thread(loader)
        yield
        if inference_log is not None:
            inference_log.close()

    return Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/health", ping, methods=["GET"]),
            Route("/version", version, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
            Route("/admin/reload", reload, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


def champion_loader(name: str, tracking_uri: str) -> ModelLoader:
    """Loads whatever version the registry's ``champion`` alias points at when called."""

    def load() -> LoadedModel:
        from mlflow import MlflowClient

        from mlops_assets.pyfunc import load_pipeline_model

        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        version = str(client.get_model_version_by_alias(name, "champion").version)
        return LoadedModel(version, load_pipeline_model(tracking_uri, name, version))

    return load
