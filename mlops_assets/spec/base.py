"""What every spec section shares: unknown keys are errors, values are frozen, files resolve against the spec
and stay inside its folder (or a root of ``MLOPS_DATA_ROOTS``)."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationInfo

from mlops_assets.spec.data_roots import is_url, outside_roots, url_problem

Task = Literal["binary", "multiclass", "regression"]


Dtype = Literal["float", "int", "str", "bool"]


class SpecModel(BaseModel):
    """Base of every spec section: unknown keys are errors (``extra="forbid"``), reported together with
    every other problem of the spec and with the allowed keys (see ``problems.describe_all``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def existing_files(pattern: str, info: ValidationInfo) -> str:
    """``pattern`` matches a file relative to ``base_dir`` (the spec's folder, given in the validation context),
    and every file it matches lies inside the data roots (``spec.data_roots.outside_roots``).

    An object-store URL is not listed while the spec loads (the code location would wait on the network, and fail
    while the store is away); the asset reading it says what it found. Without a ``base_dir`` there is nothing to
    resolve against: Dagster validates a component's attributes
    once without context, and ``MLPipelineComponent.load`` validates them again with the defs.yaml's folder.
    """
    base = confined_location(pattern, info)
    if base is None:  # a bucket is read when the asset runs
        return pattern
    matches = sorted(glob.glob(str(base / pattern)))
    if not matches:
        raise ValueError(f"no file matches {pattern!r} (relative to {base})")
    for match in matches:  # a symlink inside the folder may point anywhere
        why = outside_roots(match, base)
        if why:
            raise ValueError(f"{pattern!r} matches {match}, which {why}")
    return pattern


def confined_location(pattern: str, info: ValidationInfo) -> Path | None:
    """The spec's folder, once ``pattern`` is known to stay in the data roots; ``None`` for a URL (checked for
    credentials and scheme only) or without a ``base_dir`` in the context. The folder part before any glob
    character is resolved, so ``..``, an absolute path or a symlinked folder cannot leave the roots."""
    if is_url(pattern) or "::" in pattern:
        problem = url_problem(pattern)
        if problem:
            raise ValueError(problem)
        return None
    if "base_dir" not in (info.context or {}):
        return None
    base = Path(info.context["base_dir"])
    parts = Path(pattern).parts
    fixed = Path(*parts[: next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))] or ".")
    why = outside_roots(base / fixed, base)
    if why:
        raise ValueError(f"{pattern!r} {why}")
    return base
