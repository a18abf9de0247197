"""A spec's examples joined with the feature views it references, as of each example's time.

Each referenced view adds its features to the examples: for every example, the newest value of its entity at
or before its time and within the view's TTL, never a later one (``as_of_join``); missing where none is valid.
The snapshots are the ones the views' assets last materialized (``online/current.json`` names them), read
through the artifact store; ``reproduce`` reads the ones a version recorded instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from mlops_assets.contracts import ArtifactStore
from mlops_assets.errors import DataError
from mlops_assets.feature_views.point_in_time import as_of_join
from mlops_assets.naming import ViewPrefix, view_store_key
from mlops_assets.spec.data import ViewReference
from mlops_assets.spec.feature_view import FeatureView, entity_column, referenced_features, time_column


@dataclass(frozen=True)
class JoinedView:
    """One view a spec references, with the offline snapshot its examples are joined against."""

    view: FeatureView
    reference: ViewReference
    snapshot: pd.DataFrame
    content_hash: str

    def as_of(self, examples: pd.DataFrame, features: list[str], entity: str, time: str) -> pd.DataFrame:
        """``examples`` with ``features`` of this view as of each row's ``time`` for its ``entity`` key."""
        view = self.view
        return as_of_join(
            examples,
            self.snapshot,
            entity=view.entity,
            timestamp=view.timestamp,
            ttl=view.ttl,
            columns=features,
            example_entity=entity,
            example_timestamp=time,
        )


@dataclass(frozen=True)
class ViewJoin:
    """The join a training set's source rows go through before validation, and the snapshots it reads."""

    views: tuple[JoinedView, ...]

    @property
    def hashes(self) -> dict[str, str]:
        """Each view's snapshot hash, by view name: what a model version records."""
        return {joined.view.name: joined.content_hash for joined in self.views}

    def __call__(self, examples: pd.DataFrame) -> pd.DataFrame:
        return join_views(examples, self.views)


def join_views(examples: pd.DataFrame, views: tuple[JoinedView, ...] | list[JoinedView]) -> pd.DataFrame:
    """``examples`` with every referenced view's features, each as of the example's time (module docstring)."""
    for joined in views:
        view, reference = joined.view, joined.reference
        features = referenced_features(reference, view)
        keys = [entity_column(reference, view), time_column(reference, view)]
        absent = [column for column in keys if column not in examples.columns]
        if absent:
            raise DataError(f"the examples lack {absent}, the key columns of view {view.name!r}")
        clash = [name for name in features if name in examples.columns]
        if clash:
            raise DataError(
                f"the examples already carry {clash}, features of view {view.name!r}: drop them from the source, "
                "the view supplies them"
            )
        examples = joined.as_of(examples, features, *keys)
    return examples


def current_snapshot_hash(store: ArtifactStore, view: FeatureView) -> str:
    """The content hash of the view's newest materialized snapshot."""
    pointer = view_store_key(view.name, ViewPrefix.online, "current.json")
    if not store.exists(pointer):
        raise DataError(f"feature view {view.name!r} has no snapshot yet: materialize its asset first")
    return json.loads(store.read_bytes(pointer))["content_hash"]


def read_view_join(
    store: ArtifactStore,
    references: list[ViewReference],
    views: dict[str, FeatureView],
    hashes: dict[str, str] | None = None,
) -> ViewJoin:
    """The join of ``references`` against the snapshots named by ``hashes`` (view name -> content hash), by
    default each view's newest."""
    joined = []
    for reference in references:
        view = views[reference.view]
        digest = (hashes or {}).get(view.name) or current_snapshot_hash(store, view)
        key = view_store_key(view.name, ViewPrefix.offline, f"{digest}.parquet")
        if not store.exists(key):
            raise DataError(f"feature view {view.name!r}: its snapshot {store.uri(key)} is missing")
        joined.append(JoinedView(view, reference, store.read_table(key).to_pandas(), digest))
    return ViewJoin(tuple(joined))
