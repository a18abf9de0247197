"""Where an alert may go and what it may carry: headers only from variables the operator allowed, no
redirect followed, never a link-local or cloud metadata host, no credentials in the URL. Checked when the
spec loads (naming the field and the file) and again when the alert is sent; loopback stays allowed."""

import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mlops_assets.alerts.delivery import send_alerts
from mlops_assets.errors import SpecError
from mlops_assets.naming import AlertEvent
from mlops_assets.spec import load_spec
from mlops_assets.spec.operations import ALERT_VARIABLES_ENV, forbidden_address
from tests.webhook import Receiver

REPO = Path(__file__).resolve().parents[3]
SPEC = load_spec(REPO / "pipelines" / "breast_cancer.yaml")
LOG = logging.getLogger("test_alert_targets")


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    """A receiver that redirects every request to a second one, and the second."""
    other = Receiver()
    first = Receiver(302, other.url.replace("127.0.0.1", "localhost"))
    for server in (first, other):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield first, other
    for server in (first, other):
        server.shutdown()
        server.server_close()


def with_alerts(*alerts: dict):
    return SPEC.model_validate({**SPEC.model_dump(by_alias=True), "alerts": list(alerts)})


def spec_error(pipelines: Path, alerts: list) -> str:
    raw = yaml.safe_load((pipelines / "breast_cancer.yaml").read_text())
    path = pipelines / "alerting.yaml"
    path.write_text(yaml.safe_dump({**raw, "alerts": alerts}))
    with pytest.raises(SpecError) as error:
        load_spec(path)
    assert str(path) in str(error.value)
    return str(error.value)


@pytest.mark.parametrize("variable", ["AWS_SECRET_ACCESS_KEY", "MLOPS_ADMIN_TOKEN", "HOME"])
def test_a_header_from_a_variable_the_operator_did_not_allow_is_refused_at_load(pipelines, monkeypatch, variable):
    monkeypatch.delenv(ALERT_VARIABLES_ENV, raising=False)
    alert = {"webhook": "https://hooks.example.com/ml", "headers_from_env": {"X-Leak": variable}}
    message = spec_error(pipelines, [alert])
    assert f"alerts.0.headers_from_env: 'X-Leak': {variable!r} is not a variable alerts may send" in message
    assert "MLOPS_ALERT_" in message and ALERT_VARIABLES_ENV in message


def test_variables_named_for_alerts_or_listed_by_the_operator_are_sent(receivers, monkeypatch):
    _, receiver = receivers
    monkeypatch.setenv("MLOPS_ALERT_TOKEN", "t1")
    monkeypatch.setenv("PAGER_KEY", "t2")
    monkeypatch.setenv(ALERT_VARIABLES_ENV, "OTHER, PAGER_KEY")
    headers = {"Authorization": "MLOPS_ALERT_TOKEN", "X-Pager": "PAGER_KEY"}
    spec = with_alerts({"webhook": receiver.url, "headers_from_env": headers})
    assert send_alerts(spec, AlertEvent.drift, "drifted", "link", LOG).delivered == [receiver.url]
    ((_, _, received),) = receiver.received
    assert (received["Authorization"], received["X-Pager"]) == ("t1", "t2")


def test_a_variable_no_longer_allowed_when_sending_is_not_sent(receivers, monkeypatch):
    _, receiver = receivers
    monkeypatch.setenv("PAGER_KEY", "t2")
    monkeypatch.setenv(ALERT_VARIABLES_ENV, "PAGER_KEY")
    spec = with_alerts({"webhook": receiver.url, "headers_from_env": {"X-Pager": "PAGER_KEY"}})
    monkeypatch.delenv(ALERT_VARIABLES_ENV)
    outcome = send_alerts(spec, AlertEvent.drift, "drifted", "link", LOG)
    assert "['PAGER_KEY'] may not be sent" in outcome.failed[receiver.url] and receiver.received == []


def test_a_redirect_is_not_followed_and_the_header_reaches_only_the_webhook(receivers, monkeypatch):
    first, other = receivers
    monkeypatch.setenv("MLOPS_ALERT_TOKEN", "s3cret")
    spec = with_alerts({"webhook": first.url, "headers_from_env": {"Authorization": "MLOPS_ALERT_TOKEN"}})
    outcome = send_alerts(spec, AlertEvent.drift, "drifted", "link", LOG)
    assert outcome.failed == {first.url: "RuntimeError: answered 302 towards localhost; redirects are not followed"}
    assert [method for method, _, _ in first.received] == ["POST"] and other.received == []


@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local or cloud metadata address"),
        ("http://169.254.10.1:8080/x", "169.254.10.1 is a link-local"),
        ("http://[fe80::1]/x", "fe80::1 is a link-local"),
        ("http://[::ffff:169.254.169.254]/x", "is a link-local or cloud metadata address"),
        ("http://[fd00:ec2::254]/x", "fd00:ec2::254 is a link-local or cloud metadata address"),
        ("http://2852039166/x", "2852039166 is a link-local"),  # 169.254.169.254 as one number
        ("http://0xa9fea9fe/x", "0xa9fea9fe is a link-local"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata.google.internal is a link-local"),
        ("http://METADATA.google.internal./x", "metadata.google.internal is a link-local"),
        ("https://user:pass@hooks.example.com/x", "a webhook URL may not hold credentials"),
        ("https://token@hooks.example.com/x", "a webhook URL may not hold credentials"),
        ("ftp://user:pass@files.example.com/x", "a webhook URL may not hold credentials"),
    ],
)
def test_metadata_link_local_and_userinfo_webhooks_are_refused_at_load(pipelines, url, refusal):
    message = spec_error(pipelines, [{"webhook": "https://ok.example.com/x"}, {"webhook": url}])
    assert "alerts.1.webhook: " in message and refusal in message
    assert "pass@" not in message.replace(url, "")


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x", "http://localhost/x", "http://10.0.0.5/x", "http://[::1]/x"])
def test_loopback_and_private_receivers_stay_allowed(url):
    assert with_alerts({"webhook": url}).alerts[0].webhook == url


def test_a_name_that_resolves_to_a_metadata_address_is_refused_when_sending(monkeypatch):
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):  # a hostile DNS record: the name looks harmless
        if host == "hooks.example.com":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    spec = with_alerts({"webhook": "http://hooks.example.com/x", "timeout_s": 2})
    outcome = send_alerts(spec, AlertEvent.drift, "drifted", "link", LOG)
    assert "resolves to a link-local or cloud metadata address" in outcome.failed["http://hooks.example.com/x"]


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [("169.254.0.1", True), ("100.100.100.200", True), ("fe80::1%eth0", True), ("127.0.0.1", False), ("::1", False)],
)
def test_forbidden_addresses(address, forbidden):
    assert forbidden_address(address) is forbidden
