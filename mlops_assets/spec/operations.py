"""The operating sections of a spec: rollout, monitoring, when the sensors retrain, batch scoring."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from mlops_assets.naming import ALERT_EVENTS, ON_INVALID, STRATEGIES
from mlops_assets.spec.base import SpecModel, existing_files
from mlops_assets.spec.drift import DriftConfig  # the statistics' defaults are the spec's
from mlops_assets.spec.vocabulary import ESTIMABLE


class RolloutSettings(SpecModel):
    share: float = Field(default=0.1, gt=0, lt=1, description="canary/ab: share of requests the challenger answers.")
    sticky_key: str | None = Field(
        default=None, description="Request column that keeps a caller on one arm (default: id_column)."
    )
    min_requests: int = Field(default=200, ge=1, description="canary: challenger requests before the verdict.")
    timeout_minutes: float = Field(
        default=30, gt=0, description="canary: roll back when the challenger has not had enough requests by then."
    )
    max_error_rate_increase: float = Field(
        default=0.01, ge=0, description="canary: most extra failed-request share the challenger may add."
    )
    min_gain: float = Field(
        default=0.0,
        description="canary with labels: least gain over the champion's online primary metric, in its better "
        "direction, that the confidence interval of the challenger's gain must reach (negative tolerates a small "
        "regression); with 0 a challenger is rolled back only when confidently worse.",
    )
    min_labelled_rows: int = Field(
        default=50,
        ge=1,
        description="canary with labels: labelled predictions each arm needs before the metrics are compared; "
        "at the timeout with fewer, the verdict rests on error rates and says so.",
    )


class Deployment(SpecModel):
    strategy: Literal[STRATEGIES] = Field(
        default="replace",
        description="replace: swap to the gated challenger; canary: a share first, then promote or roll back "
        "automatically; shadow: the challenger scores copies; ab: a fixed split for a person to decide.",
    )
    rollout: RolloutSettings = Field(
        default_factory=RolloutSettings, description="Settings of canary, shadow and ab rollouts."
    )
    host: str = Field(default="127.0.0.1", description="Interface the local endpoint listens on.")
    port: int = Field(default=0, ge=0, le=65535, description="Port of the local endpoint (0: any free port).")
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Processes serving the endpoint's port (`mlops-assets serve --workers`; on Kubernetes, per "
        "pod): each logs to its own files, a dead one is restarted, and a reload or rollout reaches every one "
        "before it is acknowledged.",
    )
    on_invalid: Literal[ON_INVALID] = Field(
        default="reject",
        description="A scoring row that breaks the schema (a type, a bound, an unseen category, NaN or infinity "
        "where not nullable): reject answers 400 naming the row, column and rule; flag scores it, marks it invalid "
        "in the inference log and counts it.",
    )
    fast_path: bool = Field(
        default=True,
        description="Score small requests with the model compiled to numpy (linear models, trees, forests, "
        "gradient boosting) when, at load time, it reproduces the model on the version's holdout.",
    )
    fast_path_tolerance: float = Field(
        default=1e-9,
        gt=0,
        description="Largest difference of probabilities (regression: predictions) the fast path may show on "
        "the holdout; labels must be identical.",
    )
    scoring_token_env: str | None = Field(
        default=None,
        description="Environment variable holding a bearer token that /invocations then requires "
        "(default: scoring is open; admin routes always need MLOPS_ADMIN_TOKEN when it is set).",
    )
    requires_approval: bool | list[Literal[STRATEGIES]] = Field(
        default=False,
        description="A person approves each promotion (`mlops-assets approve`, or the run's `approved_by`) before "
        "deployed_endpoint promotes a gated challenger: true for every strategy, or a list of strategies "
        "(e.g. [replace]); until then the champion serves and the `approval` check fails, saying why.",
    )

    def approval_required(self, strategy: str) -> bool:
        """Whether promoting by ``strategy`` waits for a person's approval."""
        required = self.requires_approval
        return strategy in required if isinstance(required, list) else required


class Thresholds(SpecModel):
    psi: float | None = Field(default=None, gt=0, description="PSI threshold for this feature.")
    wasserstein: float | None = Field(default=None, gt=0, description="Normalised Wasserstein threshold.")
    js: float | None = Field(default=None, gt=0, description="Jensen-Shannon distance threshold (categories).")


class Performance(SpecModel):
    metric: str = Field(description="Online metric computed on logged predictions joined to labels.")
    floor: float = Field(
        description="Retrain when the metric's confidence interval lies wholly below this "
        "(above it, for lower-is-better metrics)."
    )
    window: int = Field(default=200, ge=10, description="Labelled predictions per evaluation window.")
    confidence: float = Field(default=0.95, gt=0, lt=1, description="Level of the confidence interval.")
    estimated: bool = Field(
        default=False,
        description="Also estimate the metric from the served probabilities calibrated on the holdout (accuracy "
        "for any classifier, roc_auc for a binary one), and retrain on a decay of the estimate while no labels "
        "are there.",
    )

    @field_validator("estimated")
    @classmethod
    def _estimable(cls, estimated: bool, info) -> bool:
        metric = info.data.get("metric")
        if estimated and metric not in ESTIMABLE:
            raise ValueError(
                f"{metric!r} cannot be estimated from the served probabilities; allowed: {list(ESTIMABLE)}"
            )
        return estimated


class Slo(SpecModel):
    latency_p99_ms: float | None = Field(
        default=None, gt=0, description="Most the 99th percentile of scoring latency may be over a window, in ms."
    )
    max_error_rate: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Most share of scoring requests that fail on the endpoint's side (a 5xx) over a window; a "
        "client's unfinished request (408) and a rejected bad row (400, max_rejected_share) are the caller's.",
    )
    window_minutes: float = Field(default=15, gt=0, description="The window each SLO check measures, ending now.")
    min_requests: int = Field(
        default=100, ge=1, description="Fewer scoring requests in the window: no verdict, the checks pass saying so."
    )
    interval_minutes: float = Field(default=5, gt=0, description="How often the SLO checks run.")
    rollback: bool = Field(
        default=False,
        description="A failed SLO moves `champion` back to the version it replaced when the champion's own traffic "
        "(the window's part since its promotion, at least min_requests requests) misses the objective too: the new "
        "version is what broke it; recorded in the audit trail.",
    )

    @model_validator(mode="after")
    def _an_objective(self) -> Slo:
        if self.latency_p99_ms is None and self.max_error_rate is None:
            raise ValueError("give latency_p99_ms, max_error_rate or both")
        return self


class Skew(SpecModel):
    sample_every: int = Field(
        default=100,
        ge=1,
        description="The endpoint keeps the features it computed for one scoring request in this many; the skew "
        "check featurises those requests again offline with the training transformer and compares.",
    )
    rows: int = Field(default=200, ge=1, description="Newest sampled rows the skew check compares.")
    tolerance: float = Field(
        default=1e-9,
        gt=0,
        description="Largest difference (absolute, or relative to the value's size) of a feature, probability or "
        "regression prediction that is still float rounding; a torch model's outputs (float32) are allowed 1e-6 "
        "at least.",
    )
    interval_minutes: float = Field(default=60, gt=0, description="How often the skew check runs.")


class SchemaBreak(SpecModel):
    window_minutes: float = Field(
        default=15, gt=0, description="The window of scoring requests the schema_break check measures, ending now."
    )
    min_requests: int = Field(
        default=20, ge=1, description="Fewer scoring requests in the window: no verdict, the check passes saying so."
    )
    interval_minutes: float = Field(default=5, gt=0, description="How often the schema_break check runs.")


class Monitoring(SpecModel):
    window: int = Field(default=500, ge=1, description="Newest logged requests compared to the reference.")
    min_rows: int = Field(default=50, ge=1, description="Fewer logged requests than this: no verdict yet.")
    bins: int = Field(default=DriftConfig.bins, ge=2, le=100, description="Quantile bins fixed on the reference (PSI).")
    psi_threshold: float = Field(
        default=DriftConfig.psi_threshold, gt=0, description="PSI above which a numeric feature has drifted."
    )
    wasserstein_threshold: float = Field(
        default=DriftConfig.wasserstein_threshold,
        gt=0,
        description="Wasserstein distance over the reference's std above which it has drifted.",
    )
    js_threshold: float = Field(
        default=DriftConfig.js_threshold,
        gt=0,
        description="Jensen-Shannon distance above which a categorical feature, or a numeric feature's missing "
        "share, has drifted.",
    )
    alpha: float = Field(
        default=DriftConfig.alpha,
        gt=0,
        lt=1,
        description="Level of the corrected KS / chi-squared tests that must confirm an effect size.",
    )
    correction: Literal["bonferroni", "bh"] = Field(
        default=DriftConfig.correction,
        description="Multiple-testing correction: bonferroni or bh (Benjamini-Hochberg).",
    )
    features: dict[str, Thresholds] = Field(
        default_factory=dict, description="Per-feature threshold overrides, by feature name."
    )
    persistence: int = Field(
        default=1, ge=1, description="Consecutive drifted windows (one report each) before retraining."
    )
    max_rejected_share: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Largest share of scoring requests the endpoint may reject (400: a missing column, an unseen "
        "category, a bad value) over the schema_break check's window, and between two drift reports; rejected "
        "requests are never logged, so this is how a feature that stops arriving is seen.",
    )
    schema_break: SchemaBreak = Field(
        default_factory=SchemaBreak,
        description="The schema_break check on the endpoint's telemetry: the share of scoring requests it rejected "
        "over a recent window against max_rejected_share, naming the columns and rules that rejected them.",
    )
    performance: Performance | None = Field(
        default=None, description="Online performance check once labels can be joined to predictions."
    )
    slo: Slo | None = Field(
        default=None, description="Serving objectives the endpoint's telemetry is checked against (asset checks)."
    )
    skew: Skew = Field(default_factory=Skew, description="Training/serving skew check on sampled requests.")


class Retraining(SpecModel):
    on_drift: bool = Field(default=True, description="Retrain when the drift report says drift.")
    on_new_labels: bool = Field(default=True, description="Retrain when a new label batch lands.")
    cooldown_minutes: float = Field(default=60, ge=0, description="Least time between two automatic retrainings.")
    daily_budget: int = Field(default=3, ge=0, description="Most automatic retrainings per UTC day.")
    sensors: Literal["running", "stopped"] = Field(
        default="running", description="Initial status of the pipeline's sensors in Dagster."
    )
    interval_seconds: int = Field(default=30, ge=5, description="Least time between two sensor ticks.")


class Batch(SpecModel):
    path: str = Field(
        description="CSV or parquet file or glob to score with the champion, relative to the spec, or an "
        "object-store URL (s3://...)."
    )
    batch_rows: int = Field(default=65_536, ge=1, description="Rows scored at a time: what bounds memory.")

    _validate_path = field_validator("path")(existing_files)


ALERT_COMMANDS_ENV = "MLOPS_ALLOWED_ALERT_COMMANDS"  # programs an alert may run: comma-separated, exact argv[0]
ALERT_VARIABLES_ENV = "MLOPS_ALLOWED_ALERT_ENV"  # variables a webhook's headers may be read from: comma-separated names
ALERT_ENV_PREFIX = "MLOPS_ALERT_"  # variables of this prefix are always allowed: the operator named them for alerts
# where cloud instances answer with their credentials; link-local addresses (169.254.0.0/16, fe80::/10) too
METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data"})
METADATA_ADDRESSES = frozenset(map(ipaddress.ip_address, ["169.254.169.254", "fd00:ec2::254", "100.100.100.200"]))
_HEADER = re.compile(r"^[A-Za-z0-9-]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_IPV4_LIKE = re.compile(r"^[0-9a-fx.]+$")  # 2852039166, 0xa9fea9fe, 169.254.43518: IPv4 as the resolver reads it


def allowed_alert_commands() -> tuple[str, ...]:
    """The programs of ``MLOPS_ALLOWED_ALERT_COMMANDS``; none by default, so a spec alone runs nothing."""
    return tuple(p.strip() for p in os.environ.get(ALERT_COMMANDS_ENV, "").split(",") if p.strip())


def allowed_alert_variable(name: str) -> bool:
    """Whether a webhook header may carry the environment variable ``name``: one of ``MLOPS_ALERT_*``, or one
    listed in ``MLOPS_ALLOWED_ALERT_ENV``; never any other (a spec must not send AWS_SECRET_ACCESS_KEY away)."""
    listed = {p.strip() for p in os.environ.get(ALERT_VARIABLES_ENV, "").split(",") if p.strip()}
    return name.startswith(ALERT_ENV_PREFIX) or name in listed


def forbidden_address(address: str) -> bool:
    """Whether an alert may never be sent to ``address`` (an IP, in any form the resolver reads): link-local or
    a cloud metadata service's. Loopback and private networks stay allowed: receivers live there."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        if not _IPV4_LIKE.match(address):
            return False
        try:
            ip = ipaddress.ip_address(socket.inet_aton(address))
        except OSError:
            return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_link_local or ip in METADATA_ADDRESSES


def webhook_problem(url: str) -> str | None:
    """Why an alert may not post to ``url``, read from the URL alone (no name is resolved), or ``None``."""
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:  # first: the other messages quote the URL
        return "a webhook URL may not hold credentials (user:secret@); send them in headers_from_env"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http:// or https:// URL with a host"
    host = parts.hostname.rstrip(".")
    if host in METADATA_HOSTS or forbidden_address(host):
        return f"{host} is a link-local or cloud metadata address; alerts are never sent there"
    return None


class Alert(SpecModel):
    webhook: str | None = Field(
        default=None,
        description="http(s) URL that receives a JSON POST: pipeline, event, message, link (the asset in the "
        "Dagster UI) and time. No credentials in it, no link-local or cloud metadata host; a redirect is not "
        "followed.",
    )
    headers_from_env: dict[str, str] = Field(
        default_factory=dict,
        description="webhook: headers whose values are read from environment variables when sent, "
        f"e.g. {{Authorization: {ALERT_ENV_PREFIX}TOKEN}}; no secret belongs in the spec. Only variables named "
        f"{ALERT_ENV_PREFIX}* or listed in {ALERT_VARIABLES_ENV} (comma-separated) may be sent.",
    )
    command: list[str] | None = Field(
        default=None,
        description="Program and arguments run without a shell, the JSON body on its stdin; its program must be "
        f"listed in {ALERT_COMMANDS_ENV} (comma-separated, exactly as written here), so a spec alone runs nothing.",
    )
    on: list[Literal[ALERT_EVENTS]] = Field(
        default_factory=lambda: list(ALERT_EVENTS), description=f"Events that fire it (default: all of {ALERT_EVENTS})."
    )
    timeout_s: float = Field(
        default=5, gt=0, le=30, description="Longest a delivery may take; a run never waits longer for it."
    )

    @field_validator("webhook")
    @classmethod
    def _http_only(cls, url: str | None) -> str | None:
        problem = webhook_problem(url) if url is not None else None
        if problem:
            raise ValueError(problem)
        return url

    @field_validator("headers_from_env")
    @classmethod
    def _header_names(cls, headers: dict[str, str]) -> dict[str, str]:
        for header, variable in headers.items():
            if not _HEADER.match(header) or not _ENV_NAME.match(variable):
                raise ValueError(
                    f"{header!r}: {variable!r} must map a header name (letters, digits, -) to an environment "
                    "variable name; the value is read from the environment when the alert is sent"
                )
            if not allowed_alert_variable(variable):
                raise ValueError(
                    f"{header!r}: {variable!r} is not a variable alerts may send; name it {ALERT_ENV_PREFIX}..., "
                    f"or list it in {ALERT_VARIABLES_ENV} (comma-separated), so that a spec alone sends no secret"
                )
        return headers

    @field_validator("command")
    @classmethod
    def _allowed_program(cls, command: list[str] | None) -> list[str] | None:
        if command is None:
            return None
        if not command or not command[0]:
            raise ValueError("give the program and its arguments, e.g. [/usr/local/bin/page-oncall, --team, ml]")
        allowed = allowed_alert_commands()
        if command[0] not in allowed:
            raise ValueError(
                f"{command[0]!r} is not an allowed alert program (allowed: {', '.join(allowed) or 'none'}); "
                f"a spec cannot run a program the operator did not list in {ALERT_COMMANDS_ENV} (comma-separated)"
            )
        return command

    @model_validator(mode="after")
    def _one_target(self) -> Alert:
        if (self.webhook is None) == (self.command is None):
            raise ValueError("give exactly one of webhook or command")
        if self.headers_from_env and self.webhook is None:
            raise ValueError("headers_from_env goes with a webhook")
        return self
