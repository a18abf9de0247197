"""The spec loader fuzzed over every section, the operating ones included: alerts, SLO, skew, fairness,
resources, and sources as local paths or object-store URLs. Whatever the mutation, the loader answers with a
spec or a ``SpecError`` naming the file; a spec that loads never reads outside its folder, never holds a
credential in a URL and never sends a variable the operator did not allow, to a host it must not reach."""

import copy
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from hypothesis import given
from hypothesis import strategies as st

from mlops_assets.errors import SpecError
from mlops_assets.spec import load_spec
from mlops_assets.spec.data_roots import is_url, outside_roots
from mlops_assets.spec.operations import allowed_alert_variable, webhook_problem
from tests.unit.spec.test_loading import FUZZ, SCALARS, loads_or_refuses, paths

REPO = Path(__file__).resolve().parents[3]
HOSTILE = [
    "s3://AKIAKEY:wJalrSECRET@bucket/x.csv",
    "s3://AKIAKEY@bucket/labels/",
    "gs://bucket/data/*.parquet",
    "simplecache::file:///etc/x.csv",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/hook",
    "http://2852039166/hook",
    "https://user:wJalrSECRET@hooks.example.com/x",
    "http://metadata.google.internal/",
    "http://127.0.0.1:9/hook",
    "../../elsewhere/x.csv",
    "/etc/passwd",
    "data/*.csv",
    "AWS_SECRET_ACCESS_KEY",
    "MLOPS_ADMIN_TOKEN",
    "MLOPS_ALERT_TOKEN",
    "sklearn.pipeline.Pipeline",
    "sklearn.utils.tests.test_estimator_checks.BaseBadClassifier",
    "sklearn.linear_model._ridge.Ridge",
    "many",
]
LOCATED = ("source.path", "source.labels.path", "batch.path", "alerts.0.webhook", "alerts.1.webhook")
VALUES = st.recursive(
    SCALARS | st.sampled_from(HOSTILE),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8) | st.sampled_from(HOSTILE), inner),
    max_leaves=12,
)


def full_spec(urls: bool) -> dict:
    """The diabetes spec with every optional section set; its data in a bucket when ``urls``."""
    raw = yaml.safe_load((REPO / "pipelines" / "diabetes.yaml").read_text())
    raw["evaluation"] = {**raw.get("evaluation", {}), "slices": ["sex"], "fairness": {"sensitive": ["sex"]}}
    raw["monitoring"] = {
        **raw.get("monitoring", {}),
        "slo": {"latency_p99_ms": 250, "max_error_rate": 0.01},
        "skew": {"sample_every": 10, "rows": 50},
        "schema_break": {"window_minutes": 5},
    }
    raw["model"]["resources"] = {"gpu": 1, "cpu": "500m", "memory": "4Gi", "node_selector": {"pool": "gpu"}}
    raw["alerts"] = [
        {"webhook": "http://127.0.0.1:9/hook", "headers_from_env": {"Authorization": "MLOPS_ALERT_TOKEN"}},
        {"webhook": "https://hooks.example.com/ml", "on": ["drift", "rollback"], "timeout_s": 2},
    ]
    raw["schema"]["columns"]["case_id"] = {"dtype": "str"}
    raw["id_column"] = "case_id"
    raw["features"]["exclude"] = ["case_id"]
    raw["source"]["labels"] = {"path": "data/diabetes/", "id_column": "case_id"}
    raw["batch"] = {"path": "data/diabetes/*.csv"}
    if urls:
        raw["source"] = {
            "path": "s3://bucket/data/*.csv",
            "labels": {"path": "s3://bucket/labels/", "id_column": "case_id"},
        }
        raw["batch"] = {"path": "gs://bucket/batch/*.parquet"}
    return raw


VALID = {"local": full_spec(urls=False), "urls": full_spec(urls=True)}


def test_the_full_specs_load(pipelines):
    for name, raw in VALID.items():
        path = pipelines / f"{name}.yaml"
        path.write_text(yaml.safe_dump(raw))
        assert load_spec(path).monitoring.slo.latency_p99_ms == 250


def nothing_escapes(path: Path) -> None:
    """What a loaded spec may do: read inside its folder or a bucket, send only allowed variables, to a host
    it may reach."""
    spec = load_spec(path)
    located = [spec.source.path, spec.batch.path if spec.batch else None]
    located += [spec.source.labels.path] if spec.source.labels else []
    for location in filter(None, located):
        if is_url(location) or "::" in location:
            parts = urlsplit(location)
            assert "::" not in location and parts.password is None and parts.username is None, location
        else:
            assert outside_roots(path.parent / location.split("*")[0], path.parent) is None, location
    for alert in spec.alerts:
        assert alert.webhook is None or webhook_problem(alert.webhook) is None, alert.webhook
        assert all(allowed_alert_variable(v) for v in alert.headers_from_env.values()), alert.headers_from_env


@FUZZ
@given(st.sampled_from(sorted(VALID)), st.data())
def test_mutated_full_specs_load_safely_or_are_a_spec_error(pipelines, name, data):
    raw = copy.deepcopy(VALID[name])
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(list(paths(raw))))
        parent = raw
        for key in where[:-1]:
            parent = parent[key]
        if not where:
            continue
        if isinstance(parent, dict) and data.draw(st.booleans()):
            del parent[where[-1]]
        else:
            parent[where[-1]] = data.draw(VALUES)
    path = pipelines / "fuzz.yaml"
    path.write_text(yaml.safe_dump(raw))
    loads_or_refuses(path)
    try:
        nothing_escapes(path)
    except SpecError as exc:  # the error is logged: a refused location never quotes the secret in it
        located = [line for line in str(exc).splitlines() if line.lstrip("- ").startswith(LOCATED)]
        assert not any("wJalrSECRET" in line for line in located), located
