"""Replaying a pipeline's own data against its endpoint: a smoke test, and drift on demand."""

from __future__ import annotations

import http.client
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import numpy as np

from mlops_assets.data.snapshot import read_files
from mlops_assets.errors import MlopsError

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec


def replay(
    spec: PipelineSpec,
    base_dir: Path,
    url: str,
    rows: int,
    batch: int = 1,
    shifts: dict[str, float] | None = None,
    seed: int = 0,
    nulls: list[str] | None = None,
) -> int:
    """Send ``rows`` rows sampled from the source (with replacement), ``batch`` per request, as
    ``dataframe_split``; numeric columns in ``shifts`` are multiplied by their factor, columns in ``nulls``
    are sent empty (an upstream system that stopped filling them). Returns rows sent."""
    frame, _, _ = read_files(spec.source.path, base_dir)
    columns = spec.input_columns + ([spec.id_column] if spec.id_column in frame.columns else [])
    unknown = sorted((set(shifts or {}) | set(nulls or [])) - set(spec.input_columns))
    if unknown:
        raise MlopsError(f"cannot shift or empty {unknown}: not input columns of {spec.name} ({spec.input_columns})")
    sample = frame[columns].iloc[np.random.default_rng(seed).integers(0, len(frame), rows)].copy()
    for column, factor in (shifts or {}).items():
        sample[column] = sample[column].astype(float) * factor
    for column in nulls or []:
        sample[column] = None
    token = os.environ.get(spec.deployment.scoring_token_env, "") if spec.deployment.scoring_token_env else None
    return send_rows(url, sample, batch, token)


def send_rows(url: str, frame, batch: int = 1, token: str | None = None) -> int:
    """POST ``frame``'s rows (every column, missing values as null) to ``url``'s ``/invocations``, ``batch``
    rows a request as ``dataframe_split``, over one connection; raise on any answer but 200."""
    columns = list(frame.columns)
    data = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    target = urlsplit(url)
    assert target.hostname is not None, f"no host in {url!r}"  # the endpoint's URL: http://host:port
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
    try:
        for start in range(0, len(data), batch):
            body = json.dumps({"dataframe_split": {"columns": columns, "data": data[start : start + batch]}})
            connection.request("POST", "/invocations", body, headers)
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200:
                raise MlopsError(f"{url} answered {response.status}: {answer.decode()[:500]}")
    finally:
        connection.close()
    return len(data)
