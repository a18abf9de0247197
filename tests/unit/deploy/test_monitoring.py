"""deploy/monitoring: every metric and label the Grafana dashboard and the alerts name is one a real endpoint's
GET /metrics exports after traffic (process metrics included); promtool parses the rules and the dashboard's
queries, and fires each alert just past the bundled spec's threshold and not just below it, nor on too few requests;
the ServiceMonitor and the PrometheusRule carry what the Prometheus Operator needs and point at the endpoint's
Service (no CRD schema here: checked field by field)."""

from __future__ import annotations

import json
import math
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from mlops_assets.naming import EndpointCheck
from mlops_assets.resources.k8s_endpoint import deployment_name
from mlops_assets.serving.telemetry import LATENCY_BUCKETS, SCORING_ROUTE
from mlops_assets.spec import load_spec
from tests.unit.deploy.test_manifests import REPO, by_kind_and_name, render

MONITORING = REPO / "deploy" / "monitoring"
DASHBOARD = MONITORING / "grafana-dashboard.json"
RULES = MONITORING / "prometheus-rules.yaml"
SERVICE_MONITOR = MONITORING / "servicemonitor.yaml"
SPEC = load_spec(REPO / "pipelines" / "breast_cancer.yaml")  # the pipeline deploy/k8s/base serves; the rules mirror it
JOB = deployment_name(SPEC.name)  # the endpoint's Service, so the scrape's job label
TARGET_LABELS = {"job", "instance", "namespace", "pod", "service", "container", "endpoint"}  # Prometheus adds them
PROMETHEUS_SERIES = {"up"}  # made by Prometheus for each target it scrapes
GRAFANA_INTERVALS = {"__rate_interval": "5m", "__range": "3h"}  # stand-ins for promtool
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right"}
NO_PROMTOOL = "promtool is not installed (Debian's prometheus package; .ci/run installs it)"


# --- PromQL, read as far as these checks need -----------------------------------------------------------------


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """Each metric ``expr`` selects, with the labels its matchers name (bare names: none)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries, Grafana's $__interval variables in them
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    found = []

    def selector(match: re.Match) -> str:
        found.append((match[1], set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", match[2]))))
        return " "

    text = re.sub(r"([A-Za-z_:][\w:]*)\s*\{([^}]*)\}", selector, text)
    for name in re.findall(r"(?<![\w.$])([A-Za-z_:][\w:]*)\b(?!\s*\()", text):
        if name not in KEYWORDS:
            found.append((name, set()))
    return found


def grouping(expr: str) -> set[str]:
    """The labels ``expr`` aggregates or matches on (``by``, ``on``, ``group_left``...)."""
    lists = re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", expr)
    return {label.strip() for labels in lists for label in labels.split(",") if label.strip()}


def test_selectors_and_grouping_read_names_labels_and_leave_out_functions_strings_and_ranges():
    expr = (
        'sum by (le) (rate(a_bucket{x="1e3 b", y=~"$v"}[$__rate_interval])) / on (job) group_left (pod) '
        "b_total > 1e3 and c:recorded offset 5m"
    )
    assert selectors(expr) == [("a_bucket", {"x", "y"}), ("b_total", set()), ("c:recorded", set())]
    assert grouping(expr) == {"le", "job", "pod"}


# --- What the files hold --------------------------------------------------------------------------------------


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels(board: dict) -> Iterator[dict]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", ())  # a collapsed row holds its own


def dashboard_queries(board: dict) -> list[tuple[str, str, str]]:
    """(where, PromQL, legend) of every panel target and variable query; a variable's ``label_values(expr, label)``
    comes as ``expr`` with ``label`` as its legend."""
    queries = [
        (f"panel {panel['id']} {target['refId']}", target["expr"], target.get("legendFormat", ""))
        for panel in panels(board)
        for target in panel.get("targets", ())
    ]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            inner, label = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", variable["query"]).groups()
            queries.append((f"variable {variable['name']}", inner, f"{{{{{label}}}}}"))
    return queries


def prometheus_rule() -> dict:
    return yaml.safe_load(RULES.read_text())


def rules_by_name(rule: dict) -> dict[str, dict]:
    return {r.get("alert") or r["record"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


def minutes(duration: str) -> float:
    value, unit = re.fullmatch(r"(\d+)([smh])", duration).groups()
    return int(value) * {"s": 1 / 60, "m": 1, "h": 60}[unit]


# --- Names against a real endpoint's GET /metrics -------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, set[str]]:
    """{sample name: its labels} of GET /metrics of a real endpoint on loopback after traffic that moves every
    figure: scored rows, a rejected row, a malformed body, a client gone mid-body."""
    # Deferred: the server's helpers import MLflow and fit a model, which only this fixture needs.
    from mlops_assets.serving.app import LoadedModel, create_app
    from mlops_assets.serving.inference_log import InferenceLogWriter, log_schema
    from tests.integration.test_server import DATA, DTYPES, call, fitted, rows, serving
    from tests.integration.test_server import RULES as COLUMN_RULES

    spool, store = tmp_path_factory.mktemp("spool"), tmp_path_factory.mktemp("store")
    log = InferenceLogWriter(spool, log_schema(DTYPES, SPEC.task), flush_seconds=0.1, ship_to=str(store))  # as on k8s
    app = create_app(SPEC.name, DTYPES, lambda: LoadedModel("1", fitted(0.5)), log, schema=COLUMN_RULES)
    with serving(app) as port:
        assert call(port, "POST", SCORING_ROUTE, rows(3))[0] == 200
        broken = DATA[SPEC.input_columns].iloc[0].to_dict() | {"mean_radius": "abc"}
        assert call(port, "POST", SCORING_ROUTE, json.dumps({"dataframe_records": [broken]}).encode())[0] == 400
        assert call(port, "POST", SCORING_ROUTE, b"{")[0] == 400
        with socket.create_connection(("127.0.0.1", port)) as sock:  # half a body, then gone
            sock.sendall(f"POST {SCORING_ROUTE} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{".encode())
        deadline = time.monotonic() + 10
        while True:
            status, _, body = call(port, "GET", "/metrics")
            assert status == 200
            if b"mlops_incomplete_requests_total{" in body or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found.setdefault(sample.name, set()).update(sample.labels)
    return found


def unknown_names(expr: str, legend: str, exported: dict[str, set[str]], recorded: set[str]) -> list[str]:
    """What ``expr`` (and its legend's ``{{label}}``) names that neither the endpoint nor Prometheus provides."""
    problems = []
    available = set(TARGET_LABELS)
    for name, labels in selectors(expr):
        if name in recorded:
            continue
        if name not in exported and name not in PROMETHEUS_SERIES:
            problems.append(f"metric {name}")
            continue
        available |= exported.get(name, set())
        problems += [f"label {label} of {name}" for label in labels - exported.get(name, set()) - TARGET_LABELS]
    problems += [f"label {label}" for label in grouping(expr) - available]
    problems += [f"legend label {label}" for label in set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend)) - available]
    return problems


@pytest.mark.integration
def test_the_dashboard_names_only_metrics_and_labels_the_endpoint_exports(exported):
    queries = dashboard_queries(dashboard())
    assert len(queries) > 20
    problems = {where: unknown_names(expr, legend, exported, set()) for where, expr, legend in queries}
    assert {where: found for where, found in problems.items() if found} == {}


@pytest.mark.integration
def test_the_alerts_name_only_metrics_and_labels_the_endpoint_exports(exported):
    rules = rules_by_name(prometheus_rule())
    recorded = {name for name, rule in rules.items() if "record" in rule}
    problems = {name: unknown_names(rule["expr"], "", exported, recorded) for name, rule in rules.items()}
    assert {name: found for name, found in problems.items() if found} == {}


@pytest.mark.integration
def test_metrics_carry_the_process_memory_cpu_and_start_time(exported):
    for name in ("process_resident_memory_bytes", "process_cpu_seconds_total", "process_start_time_seconds"):
        assert name in exported, name
    assert "python_info" in exported


def test_a_name_the_endpoint_does_not_export_is_reported():
    exported = {"mlops_requests_total": {"route", "status"}}
    assert unknown_names('sum by (arm) (rate(mlops_request_total{route="x"}[5m]))', "", exported, set()) == [
        "metric mlops_request_total",
        "label arm",
    ]
    assert unknown_names('mlops_requests_total{model="x"}', "{{version}}", exported, set()) == [
        "label model of mlops_requests_total",
        "legend label version",
    ]


# --- The dashboard as Grafana imports it ----------------------------------------------------------------------


def test_the_dashboard_picks_its_prometheus_and_endpoints_through_variables():
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert {"namespace", "pipeline", "job"} <= variables.keys()
    uses = {name for _, expr, _ in dashboard_queries(board) for name in re.findall(r"\$(\w+)", expr)}
    assert uses - GRAFANA_INTERVALS.keys() <= variables.keys()
    for where, expr, _ in dashboard_queries(board):
        if where.startswith("panel"):
            for name, _ in selectors(expr):  # every series of the chosen endpoints only
                assert re.search(rf'{name}\{{namespace=~"\$namespace", job=~"\$job"', expr), (where, name)
    sources = [p["datasource"] for p in panels(board) if p["type"] != "row"]
    sources += [t["datasource"] for p in panels(board) for t in p.get("targets", ())]
    assert sources and all(s == {"type": "prometheus", "uid": "${datasource}"} for s in sources)
    assert board["schemaVersion"] >= 38 and board["id"] is None and board["uid"]


def test_the_dashboard_panels_have_unique_ids_and_do_not_overlap():
    board = dashboard()
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], int] = {}
    for panel in panels(board):
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24, panel["title"]
        for x in range(box["x"], box["x"] + box["w"]):
            for y in range(box["y"], box["y"] + box["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps panel {cells[(x, y)]}"
                cells[(x, y)] = panel["id"]


# --- promtool ---------------------------------------------------------------------------------------------------


@pytest.fixture
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip(NO_PROMTOOL)
    return path


def run_promtool(promtool: str, *args: str) -> None:
    done = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_accepts_the_rules_and_every_dashboard_query(promtool, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(prometheus_rule()["spec"]))
    board = dashboard()
    variables = {v["name"]: ".*" for v in board["templating"]["list"]} | GRAFANA_INTERVALS
    queries = [re.sub(r"\$(\w+)", lambda m: variables[m[1]], expr) for _, expr, _ in dashboard_queries(board)]
    records = [{"record": f"dashboard:query_{i}", "expr": expr} for i, expr in enumerate(queries)]
    parsed = tmp_path / "dashboard-queries.yaml"
    parsed.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    run_promtool(promtool, "check", "rules", str(rules), str(parsed))


def test_promtool_reports_a_broken_expression(promtool, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        yaml.safe_dump({"groups": [{"name": "g", "rules": [{"record": "a:b", "expr": "sum(rate(x[5m])"}]}]})
    )
    with pytest.raises(AssertionError, match="unclosed left parenthesis"):
        run_promtool(promtool, "check", "rules", str(rules))


NAMESPACE, INSTANCE = "mlops", "10.0.0.7:8080"
TARGET = f'namespace="{NAMESPACE}", job="{JOB}", instance="{INSTANCE}"'


def counter(name: str, labels: str, per_minute: int, length: int) -> dict:
    return {"series": f"{name}{{{TARGET}, {labels}}}", "values": f"0+{per_minute}x{length}"}


def scoring(status: str, per_minute: int, length: int) -> dict:
    return counter("mlops_requests_total", f'route="{SCORING_ROUTE}", status="{status}"', per_minute, length)


def unfinished(length: int) -> list[dict]:
    """Many requests whose client never finished them: a rule that counted them would dilute every share."""
    return [scoring("408", 100_000, length), scoring("none", 100_000, length)]


def latency(fast: int, slow: int, threshold_s: float, length: int) -> list[dict]:
    """The histogram of ``fast`` requests a minute in the slowest bucket wholly within ``threshold_s`` and ``slow``
    in the fastest one wholly beyond it."""
    fast_le = max(b for b in LATENCY_BUCKETS if b <= threshold_s)
    slow_le = min(b for b, below in zip(LATENCY_BUCKETS[1:], LATENCY_BUCKETS, strict=False) if below >= threshold_s)
    bounds = [*LATENCY_BUCKETS, math.inf]
    series = [
        counter(
            "mlops_request_seconds_bucket",
            f'le="{"+Inf" if b == math.inf else b}"',
            fast * (b >= fast_le) + slow * (b >= slow_le),
            length,
        )
        for b in bounds
    ]
    return [*series, scoring("200", fast + slow, length), *unfinished(length)]


def case(name: str, series: list[dict], alert: str, labels: dict[str, str], fires: bool, at: int) -> dict:
    """A promtool test group: ``alert`` firing at minute ``at`` on ``series`` (with ``labels`` and the rule's own),
    or not."""
    expected = {"alertname": alert, "alertstate": "firing", **labels}
    rendered = ", ".join(f'{k}="{v}"' for k, v in sorted(expected.items()))
    return {
        "name": name,
        "interval": "1m",
        "input_series": series,
        "promql_expr_test": [
            {
                "expr": f'ALERTS{{alertname="{alert}", alertstate="firing"}}',
                "eval_time": f"{at}m",
                "exp_samples": [{"labels": f"ALERTS{{{rendered}}}", "value": 1}] if fires else [],
            }
        ],
    }


def share_cases(alert: str, rule: dict, status: str, threshold: float, window: float, least: int) -> list[dict]:
    """``status`` answers at 1.1 and 0.9 times ``threshold`` of the scoring requests, then on every request with
    one a minute fewer and one more than ``least`` in ``window`` minutes need."""
    at = int(window + minutes(rule["for"]) + 10)
    labels = {"namespace": NAMESPACE, "job": JOB, **rule["labels"]}
    n, few = 1000, math.ceil(least / window) - 1
    assert few * window < least <= (few + 2) * window and 1 / few > threshold

    def traffic(bad: int, total: int) -> list[dict]:
        return [scoring(status, bad, at), scoring("200", total - bad, at), *unfinished(at)]

    return [
        case(f"{alert}: 1.1x", traffic(round(1.1 * threshold * n), n), alert, labels, True, at),
        case(f"{alert}: 0.9x", traffic(round(0.9 * threshold * n), n), alert, labels, False, at),
        case(f"{alert}: too few", traffic(few, few), alert, labels, False, at),
        case(f"{alert}: just enough", traffic(few + 2, few + 2), alert, labels, True, at),
    ]


def alert_cases(rules: dict[str, dict]) -> list[dict]:
    slo, monitoring = SPEC.monitoring.slo, SPEC.monitoring
    latency_rule, threshold_s = rules["MlopsEndpointLatencySLO"], slo.latency_p99_ms / 1000
    at = int(slo.window_minutes + minutes(latency_rule["for"]) + 10)
    few = math.ceil(slo.min_requests / slo.window_minutes) - 1
    labels = {"namespace": NAMESPACE, "job": JOB, **latency_rule["labels"]}
    cases = [
        case("latency: 2% slow", latency(980, 20, threshold_s, at), "MlopsEndpointLatencySLO", labels, True, at),
        case("latency: 0.5% slow", latency(995, 5, threshold_s, at), "MlopsEndpointLatencySLO", labels, False, at),
        case("latency: too few", latency(0, few, threshold_s, at), "MlopsEndpointLatencySLO", labels, False, at),
        case("latency: enough", latency(0, few + 2, threshold_s, at), "MlopsEndpointLatencySLO", labels, True, at),
    ]
    cases += share_cases(
        "MlopsEndpointErrorRateSLO",
        rules["MlopsEndpointErrorRateSLO"],
        "500",
        slo.max_error_rate,
        slo.window_minutes,
        slo.min_requests,
    )
    cases += share_cases(
        "MlopsEndpointSchemaBreak",
        rules["MlopsEndpointSchemaBreak"],
        "400",
        monitoring.max_rejected_share,
        monitoring.schema_break.window_minutes,
        monitoring.schema_break.min_requests,
    )
    down = rules["MlopsEndpointDown"]
    wait = int(minutes(down["for"]))
    up = {"series": f"up{{{TARGET}}}", "values": f"1x10 0x{wait + 5}"}
    labels = {"namespace": NAMESPACE, "job": JOB, "instance": INSTANCE, **down["labels"]}
    cases += [
        case("down past for", [up], "MlopsEndpointDown", labels, True, 10 + wait + 1),
        case("down within for", [up], "MlopsEndpointDown", labels, False, 10 + wait - 1),
    ]
    dropping = rules["MlopsInferenceLogDroppingRows"]
    wait = int(minutes(dropping["for"]))
    dropped = {"series": f'mlops_log_dropped_rows_total{{{TARGET}, log="inference"}}', "values": f"0x10 5+5x{wait + 5}"}
    none = {"series": dropped["series"], "values": f"0x{wait + 15}"}
    labels = {"namespace": NAMESPACE, "job": JOB, "log": "inference", **dropping["labels"]}
    cases += [
        case("dropping", [dropped], "MlopsInferenceLogDroppingRows", labels, True, 10 + wait + 2),
        case("not dropping", [none], "MlopsInferenceLogDroppingRows", labels, False, 10 + wait + 2),
    ]
    return cases


def test_each_alert_fires_just_past_the_spec_threshold_and_not_below_it_nor_on_too_few_requests(promtool, tmp_path):
    rule = prometheus_rule()
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule["spec"]))
    tests = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": alert_cases(rules_by_name(rule))}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    run_promtool(promtool, "test", "rules", str(tmp_path / "tests.yaml"))


def test_the_objectives_use_the_spec_windows_and_intervals_and_name_their_check():
    rules = rules_by_name(prometheus_rule())
    slo, schema_break = SPEC.monitoring.slo, SPEC.monitoring.schema_break
    assert slo.window_minutes == schema_break.window_minutes  # one set of recorded series serves both
    recorded = [rule["expr"] for rule in rules.values() if "record" in rule]
    assert {minutes(r) for expr in recorded for r in re.findall(r"\[(\w+)\]", expr)} == {slo.window_minutes}
    checks = {rule["labels"]["check"]: rule for rule in rules.values() if "check" in rule.get("labels", {})}
    assert checks.keys() == {EndpointCheck.latency_slo, EndpointCheck.error_rate_slo, EndpointCheck.schema_break}
    assert minutes(checks[EndpointCheck.latency_slo]["for"]) == slo.interval_minutes
    assert minutes(checks[EndpointCheck.error_rate_slo]["for"]) == slo.interval_minutes
    assert minutes(checks[EndpointCheck.schema_break]["for"]) == schema_break.interval_minutes
    assert f"{slo.latency_p99_ms:g} ms" in checks[EndpointCheck.latency_slo]["annotations"]["description"]
    assert f"{slo.max_error_rate:.0%}" in checks[EndpointCheck.error_rate_slo]["annotations"]["description"]
    shown = f"{SPEC.monitoring.max_rejected_share:.0%}"
    assert shown in checks[EndpointCheck.schema_break]["annotations"]["description"]


# --- The Operator's objects -----------------------------------------------------------------------------------


def test_the_prometheus_rule_has_what_the_operator_and_alertmanager_need():
    rule = prometheus_rule()
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert rule["metadata"]["name"] and set(rule["spec"]) == {"groups"}
    for group in rule["spec"]["groups"]:
        assert group["name"] and group["rules"]
        for r in group["rules"]:
            assert ("alert" in r) != ("record" in r) and r["expr"].strip(), r
            if "alert" in r:
                assert r["labels"]["severity"] in {"critical", "warning"}, r["alert"]
                assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]
                assert minutes(r["for"]) > 0


def test_the_service_monitor_scrapes_metrics_through_a_port_of_the_endpoint_service_alone():
    monitor = yaml.safe_load(SERVICE_MONITOR.read_text())
    assert (monitor["apiVersion"], monitor["kind"]) == ("monitoring.coreos.com/v1", "ServiceMonitor")
    assert monitor["metadata"]["name"]
    services = {name: o for (kind, name), o in by_kind_and_name(render("base")).items() if kind == "Service"}
    selector = monitor["spec"]["selector"]["matchLabels"]
    picked = [name for name, service in services.items() if selector.items() <= service["metadata"]["labels"].items()]
    assert picked == [JOB]
    ports = {port["name"] for port in services[JOB]["spec"]["ports"]}
    assert monitor["spec"]["endpoints"] and all(e["port"] in ports for e in monitor["spec"]["endpoints"])
    assert {e["path"] for e in monitor["spec"]["endpoints"]} == {"/metrics"}
    (down,) = [r for r in rules_by_name(prometheus_rule()).values() if r.get("alert") == "MlopsEndpointDown"]
    assert re.fullmatch(re.search(r'job=~"([^"]+)"', down["expr"])[1], JOB)  # the job label is the Service's name


def test_kustomize_renders_the_monitor_the_rule_and_the_dashboard_for_grafanas_sidecar():
    rendered = by_kind_and_name(render("../monitoring"))
    assert set(rendered) == {
        ("ServiceMonitor", JOB),
        ("PrometheusRule", "mlops-endpoint"),
        ("ConfigMap", "mlops-endpoint-dashboard"),
    }
    config_map = rendered[("ConfigMap", "mlops-endpoint-dashboard")]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"][DASHBOARD.name]) == dashboard()


def test_the_readme_explains_every_alert():
    readme = (MONITORING / "README.md").read_text()
    alerts = [name for name, rule in rules_by_name(prometheus_rule()).items() if "alert" in rule]
    assert [name for name in alerts if f"`{name}`" not in readme] == []
