"""A feature view: features defined once, per entity and event time, for every model that needs them.

A view names its entity (the key column), the source its rows come from, the column holding each row's event
time, its features (source columns, expressions over them, windowed aggregations per entity) and a TTL: a value
older than the TTL is no value. Views live in their own folder of YAML files (``feature_views/*.yaml`` beside
the pipelines folder); a spec references them by name (``features.views``). Every problem of a file is reported
at once, each naming the file and the field, as ``spec.loading`` does for specs.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError, ValidationInfo, field_validator, model_validator

from mlops_assets import grammar
from mlops_assets.errors import SpecError
from mlops_assets.spec.base import SpecModel, existing_files
from mlops_assets.spec.data import ViewReference
from mlops_assets.spec.pipeline import field_error
from mlops_assets.spec.problems import describe_all, one_per_name
from mlops_assets.spec.safe_yaml import load_yaml

if TYPE_CHECKING:
    from mlops_assets.spec.pipeline import PipelineSpec

_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([wdhms])\s*$")


def parse_duration(value: Any) -> Any:
    """``"30d"``, ``"12h"``, ``"15m"``, ``"45s"``, ``"2w"`` as a ``timedelta``; anything else is left to
    pydantic (a ``timedelta``, seconds as a number, ISO 8601 such as ``P30D``)."""
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return timedelta(**{_UNITS[match[2]]: float(match[1])})
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
AggregationFunction = Literal["count", "sum", "mean"]
_NAME = r"^[a-z][a-z0-9_]*$"


class ViewSource(SpecModel):
    path: str | None = Field(
        default=None,
        description="CSV or parquet file or glob, relative to the view file and inside its folder (or "
        "MLOPS_DATA_ROOTS), or an object-store URL (s3://...) without credentials. Give `path` or `sql`.",
    )
    sql: str | None = Field(default=None, description="A query whose rows are the view's rows (with `database`).")
    database: str | None = Field(
        default=None, description="The SQLite file the `sql` query runs against, relative to the view file."
    )

    @field_validator("path", "database")
    @classmethod
    def _inside_the_roots(cls, value: str, info: ValidationInfo) -> str:
        """The files exist and stay inside the data roots, as a spec's source files do."""
        return existing_files(value, info)

    @model_validator(mode="after")
    def _one_kind(self) -> ViewSource:
        if (self.path is None) == (self.sql is None):
            raise ValueError("give exactly one of `path` (files, a glob, a URL) or `sql` (with `database`)")
        if (self.sql is None) != (self.database is None):
            raise ValueError("`sql` and `database` go together")
        return self


class Aggregation(SpecModel):
    column: str = Field(description="The source column aggregated; `count` counts its values that are present.")
    function: AggregationFunction = Field(description="count, sum or mean of the entity's rows in the window.")
    window: Duration = Field(
        description="How far back from each row's event time the window reaches (`30d`, `12h`, `15m`, `P1W`); "
        "the window is (time - window, time]: rows at the same time count, later rows never do."
    )
    name: str | None = Field(
        default=None, pattern=_NAME, description="The feature's name; default `<column>_<function>_<window>`."
    )

    @field_validator("window")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("the window must be longer than zero")
        return value

    @property
    def feature_name(self) -> str:
        return self.name or f"{self.column}_{self.function}_{_short(self.window)}"


class FeatureView(SpecModel):
    name: str = Field(pattern=_NAME, description="The view's name: its asset key is `feature_views/<name>`.")
    description: str = Field(default="", description="Free text shown in the Dagster UI.")
    entity: str = Field(description="The key column: one entity (a customer, a device) per value.")
    timestamp: str = Field(description="The column holding each row's event time.")
    source: ViewSource = Field(description="Where the view's rows come from.")
    features: list[str] = Field(default_factory=list, description="Source columns served as they are.")
    derived: dict[str, str] = Field(
        default_factory=dict,
        description="New numeric features by expression over source columns, as in a spec's `features.derived`.",
    )
    aggregations: list[Aggregation] = Field(
        default_factory=list, description="Windowed aggregations per entity (count, sum, mean over a duration)."
    )
    ttl: Duration = Field(
        description="How long a value stays valid after its event time: an example or a request older than "
        "the newest value by more than the TTL gets no value."
    )

    @field_validator("ttl")
    @classmethod
    def _positive_ttl(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("the ttl must be longer than zero")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> FeatureView:
        if not self.feature_names:
            raise field_error(("features",), "declare at least one feature, derived feature or aggregation", [])
        for name, source in self.derived.items():
            try:
                columns = grammar.parse(source)[1]
            except ValueError as exc:
                raise field_error(("derived", name), str(exc), source) from None
            if self.entity in columns or self.timestamp in columns:
                raise field_error(("derived", name), "an expression reads features, not the key columns", source)
        keys = {self.entity: "entity", self.timestamp: "timestamp"}
        for loc, name in self._named_features():
            if name in keys:
                raise field_error(loc, f"{name!r} is the view's {keys[name]} column, not a feature", name)
            keys[name] = ".".join(map(str, loc))
        return self

    def _named_features(self) -> list[tuple[tuple[str | int, ...], str]]:
        named: list[tuple[tuple[str | int, ...], str]] = [(("features", i), c) for i, c in enumerate(self.features)]
        named += [(("derived", name), name) for name in self.derived]
        named += [(("aggregations", i), a.feature_name) for i, a in enumerate(self.aggregations)]
        return named

    @property
    def feature_names(self) -> list[str]:
        """The view's features in a fixed order: columns, derived, aggregations."""
        return [name for _, name in self._named_features()]

    @property
    def source_columns(self) -> frozenset[str]:
        """The columns the view reads from its source, expression inputs included."""
        read = {self.entity, self.timestamp, *self.features, *(a.column for a in self.aggregations)}
        return frozenset(read.union(*(grammar.parse(source)[1] for source in self.derived.values())))


def reference_problems(references: list[ViewReference], views: dict[str, FeatureView], field: str) -> list[str]:
    """One line per reference to an unknown view or feature, naming the field (``field`` is where the
    references sit in the spec, e.g. ``features.views``) and what is known."""
    problems = []
    for i, reference in enumerate(references):
        view = views.get(reference.view)
        if view is None:
            problems.append(f"{field}.{i}.view: unknown view {reference.view!r}; known: {sorted(views)}")
            continue
        unknown = [name for name in reference.features or [] if name not in view.feature_names]
        if unknown:
            known = view.feature_names
            problems.append(f"{field}.{i}.features: {unknown} are not features of view {view.name!r}: {known}")
    return problems


def spec_view_problems(spec: PipelineSpec, views: dict[str, FeatureView]) -> list[str]:
    """Every problem of a spec's ``features.views`` against the views of its folder: an unknown view or feature,
    a view feature the schema does not declare, key columns the schema lacks or that would be features."""
    references = spec.features.views
    problems = reference_problems(references, views, "features.views")
    columns, features = spec.schema_.columns, set(spec.feature_columns)
    for i, reference in enumerate(references):
        view = views.get(reference.view)
        if view is None:
            continue
        missing = [name for name in reference.features or view.feature_names if name not in columns]
        if missing:
            problems.append(
                f"features.views.{i}.features: {missing} of view {view.name!r} are not schema columns: declare each "
                "with its dtype (nullable: true unless every example has a value within the TTL)"
            )
        for field, column in (
            ("entity_column", entity_column(reference, view)),
            ("time_column", time_column(reference, view)),
        ):
            if column not in columns:
                problems.append(f"features.views.{i}.{field}: {column!r} is not a schema column")
            elif column in features:
                problems.append(
                    f"features.views.{i}.{field}: {column!r} would be a feature: name it here or in features.exclude"
                )
    return problems


def entity_column(reference: ViewReference, view: FeatureView) -> str:
    """The spec's column holding the view's entity key."""
    return reference.entity_column or view.entity


def time_column(reference: ViewReference, view: FeatureView) -> str:
    """The spec's column holding each example's time."""
    return reference.time_column or view.timestamp


def referenced_features(reference: ViewReference, view: FeatureView) -> list[str]:
    """The view's features the spec takes, in the view's order."""
    return [name for name in view.feature_names if reference.features is None or name in reference.features]


class FeatureViewError(SpecError):
    """A feature view file that cannot be used, with the file and the field path of every problem."""

    def __init__(self, path: str, problems: list[str]):
        super().__init__(path, problems)
        lines = "\n".join(f"  - {p}" for p in problems)
        self.args = (f"invalid feature view {path}:\n{lines}",)


def load_feature_view(path: str | Path) -> FeatureView:
    """Read and validate one view file; its relative paths resolve against its folder."""
    path = Path(path)
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise FeatureViewError(str(path), ["the top level must be a mapping of fields"])
    try:
        return FeatureView.model_validate(raw, context={"base_dir": path.parent})
    except ValidationError as exc:
        raise FeatureViewError(str(path), describe_all(exc.errors(), FeatureView)) from None


def read_feature_views(folder: str | Path) -> tuple[list[tuple[FeatureView, Path]], list[FeatureViewError]]:
    """Every good view of ``folder`` (``*.yaml``/``*.yml``) with its resolved path, and an error per file that is
    not; views that share a name are all refused, as specs are."""
    loaded, problems = [], []
    for path in sorted(Path(folder).glob("*.y*ml")):
        try:
            loaded.append((load_feature_view(path), path.resolve()))
        except FeatureViewError as exc:
            problems.append(exc)
    views, refused = one_per_name(
        loaded, lambda view: view.name, lambda path, why: FeatureViewError(str(path), [f"name: view {why}"])
    )
    return views, [*problems, *refused]


def load_feature_views(folder: str | Path) -> dict[str, FeatureView]:
    """Every view of ``folder`` by name, or one ``FeatureViewError`` listing every problem of every file."""
    views, problems = read_feature_views(folder)
    if problems:
        raise FeatureViewError(str(folder), [str(p) for p in problems])
    return {view.name: view for view, _ in views}


def _short(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
