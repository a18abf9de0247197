"""What a scoring endpoint is built from, as one record read once at startup.

``ScoringApp`` (app.py) and the request logic (invocations.py) take an ``EndpointSettings`` rather than a long
list of keyword arguments each, so that a setting is declared, defaulted and described in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field

from mlops_assets.naming import ON_INVALID, OnInvalid
from mlops_assets.serving.inference_log import InferenceLogWriter
from mlops_assets.serving.loading import ModelLoader, VersionLoader
from mlops_assets.serving.row_checks import ColumnRules
from mlops_assets.serving.view_lookup import ViewLookup


@dataclass(frozen=True)
class EndpointSettings:
    """One endpoint's model, logs, limits and tokens.

    ``input_dtypes`` maps each required input column to its spec dtype (``float``/``int``/``str``...); ``loader``
    loads the registry's champion, at startup and on ``/admin/reload``. A request may carry ``id_column``
    (optional, not a feature): it is logged, so labels that arrive later can be joined to the predictions.
    A body over ``max_body_bytes`` gets a 413 without being read whole. ``version_loader`` loads a given
    version: it enables canary, shadow and ab rollouts (``/admin/rollout``); a shadow model's answers go to
    ``shadow_log``. Admin routes need ``admin_token`` as a bearer token when it is set, scoring routes need
    ``scoring_token`` when that is set.

    ``schema`` holds the rules of the input columns and the id (``row_checks.column_rules(spec.schema_.columns)``;
    a column without rules is checked for its dtype only, and may be null); ``on_invalid`` is ``reject`` or
    ``flag``. A request's head must arrive within ``head_timeout_s`` (``run`` applies it), its body within
    ``body_timeout_s`` of the head. Every ``telemetry_interval_s`` (and at shutdown) a telemetry snapshot is
    written beside the inference log (``0``: never). The inference log keeps the features of the first
    scoring request and one in ``skew_sample_every`` after it (``spec.monitoring.skew.sample_every``; ``None``:
    of none). ``feature_views`` looks up the features of the spec's feature views by the entity keys a request
    carries (view_lookup.py; ``None``: the request carries every feature itself).
    """

    name: str
    input_dtypes: dict[str, str]
    loader: ModelLoader
    inference_log: InferenceLogWriter | None = None
    _: KW_ONLY
    admin_token: str | None = None
    scoring_token: str | None = None
    max_body_bytes: int = 16 * 1024 * 1024
    id_column: str | None = None
    version_loader: VersionLoader | None = None
    shadow_log: InferenceLogWriter | None = None
    schema: Mapping[str, ColumnRules] = field(default_factory=dict)
    on_invalid: str = OnInvalid.reject  # one of ON_INVALID: what a row that breaks the schema gets
    head_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    telemetry_interval_s: float = 60.0
    skew_sample_every: int | None = None
    feature_views: ViewLookup | None = None

    def __post_init__(self) -> None:
        if self.on_invalid not in ON_INVALID:
            raise ValueError(f"on_invalid must be one of {list(ON_INVALID)}; got {self.on_invalid!r}")
