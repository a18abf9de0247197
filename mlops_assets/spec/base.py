"""What every spec section shares: unknown keys are errors, values are frozen, files resolve against the spec."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationInfo

from mlops_assets.data.locations import is_url

Task = Literal["binary", "multiclass", "regression"]


Dtype = Literal["float", "int", "str", "bool"]


class SpecModel(BaseModel):
    """Base of every spec section: unknown keys are errors (``extra="forbid"``), reported together with
    every other problem of the spec and with the allowed keys (see ``_describe_all``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def existing_files(pattern: str, info: ValidationInfo) -> str:
    """``pattern`` matches a file relative to ``base_dir`` (the spec's folder, given in the validation context).

    An object-store URL is not listed while the spec loads (the code location would wait on the network, and fail
    while the store is away); the asset reading it says what it found. Without a ``base_dir`` there is nothing to
    resolve against: Dagster validates a component's attributes
    once without context, and ``MLPipelineComponent.load`` validates them again with the defs.yaml's folder.
    """
    if "base_dir" not in (info.context or {}) or is_url(pattern):  # a bucket is read when the asset runs
        return pattern
    base = Path(info.context["base_dir"])
    if not glob.glob(str(base / pattern)):
        raise ValueError(f"no file matches {pattern!r} (relative to {base})")
    return pattern
