"""The data sections of a spec: where rows come from, their schema, the split and the features."""

from __future__ import annotations

import glob
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from mlops_assets.spec.base import Dtype, SpecModel, confined_location, existing_files


class LabelsSource(SpecModel):
    path: str = Field(
        description="CSV/parquet file, glob or folder of label batches, relative to the spec and inside its folder "
        "(or MLOPS_DATA_ROOTS), or an object-store URL (s3://bucket/labels/) without credentials."
    )
    id_column: str = Field(description="Column present in both the data and the labels, used to join them.")

    @field_validator("path")
    @classmethod
    def _location_exists(cls, value: str, info: ValidationInfo) -> str:
        """Label batches may not have arrived yet, but the folder they land in must exist, inside the data roots
        (checked, as ``existing_files`` is, only where the validation context gives the spec's ``base_dir``)."""
        base = confined_location(value, info)
        if base is None:
            return value
        location = base / value
        if glob.has_magic(value):
            location = location.parent
        if not location.exists():
            raise ValueError(f"{value!r} does not exist (relative to {base})")
        return value


class Source(SpecModel):
    path: str = Field(
        description="CSV or parquet file or glob, relative to the spec file and inside its folder (or a folder of "
        "MLOPS_DATA_ROOTS, symlinks followed), or an object-store URL (s3://...); a URL holds no credentials, they "
        "come from the environment."
    )
    labels: LabelsSource | None = Field(
        default=None, description="Optional label batches joined to the data by an id column."
    )

    _validate_path = field_validator("path")(existing_files)


class Column(SpecModel):
    dtype: Dtype = Field(description="float, int, str or bool; values are coerced, failures quarantined.")
    nullable: bool = Field(default=False, description="Whether missing values are allowed.")
    ge: float | None = Field(default=None, description="Minimum allowed value (inclusive).")
    gt: float | None = Field(default=None, description="Minimum allowed value (exclusive).")
    le: float | None = Field(default=None, description="Maximum allowed value (inclusive).")
    lt: float | None = Field(default=None, description="Maximum allowed value (exclusive).")
    isin: list[Any] | None = Field(default=None, description="Allowed values.")
    notin: list[Any] | None = Field(default=None, description="Forbidden values.")
    str_matches: str | None = Field(default=None, description="Regular expression every value must match.")


class Schema(SpecModel):
    columns: dict[str, Column] = Field(description="Every expected column, the target included.")
    unknown_columns: Literal["reject", "drop", "keep"] = Field(
        default="reject", description="What to do with columns the schema does not list."
    )
    max_quarantine_share: float = Field(
        default=0.05, ge=0, le=1, description="Largest share of rows that may fail validation."
    )

    @field_validator("columns")
    @classmethod
    def _not_empty(cls, value: dict[str, Column]) -> dict[str, Column]:
        if not value:
            raise ValueError("list at least the target and one feature column")
        return value


class Split(SpecModel):
    holdout: float = Field(default=0.2, gt=0, lt=1, description="Share of rows kept out of training.")
    seed: int = Field(default=42, description="Seed of the deterministic split.")


class Transform(SpecModel):
    kind: Literal["standard", "minmax", "onehot", "ordinal"] = Field(
        description="standard/minmax scale numbers; onehot/ordinal encode categories."
    )
    columns: list[str] = Field(min_length=1, description="Columns (schema or derived) the transform reads.")
    categories: dict[str, list[Any]] | None = Field(
        default=None, description="ordinal only: the ordered categories per column (default: sorted)."
    )


class ViewReference(SpecModel):
    """A feature view a spec uses (``features.views``): the view, the features it takes from it, and which of the
    spec's own columns hold the entity key and the example's time."""

    view: str = Field(description="The name of a view of the `feature_views` folder beside the spec.")
    features: list[str] | None = Field(
        default=None,
        description="The view's features used (default: all); each is also a schema column, as the model sees it.",
    )
    entity_column: str | None = Field(
        default=None, description="The schema column holding the view's entity key (default: the view's `entity`)."
    )
    time_column: str | None = Field(
        default=None,
        description="The schema column holding each example's time (default: the view's `timestamp`); named here, "
        "it is never a feature.",
    )


class Features(SpecModel):
    views: list[ViewReference] = Field(
        default_factory=list,
        description="Feature views joined as of each example's time: the newest value at or before it, within the "
        "view's TTL (docs/features.md).",
    )
    derived: dict[str, str] = Field(
        default_factory=dict,
        description="New numeric columns by expression over other columns, e.g. `ratio: a / b`.",
    )
    transforms: list[Transform] | None = Field(
        default=None,
        description="Transforms; columns not named pass through. Default: standard-scale numbers, one-hot strings.",
    )
    exclude: list[str] = Field(
        default_factory=list, description="Schema columns that are not features (ids, timestamps)."
    )
