"""Admin routes: every one needs the token when one is set, and a bad body is refused before anything changes."""

import json

import pytest

from mlops_assets.serving.app import LoadedModel, create_app
from tests.integration.test_server import CHALLENGER, DTYPES, RULES, SPEC, call, fitted, rows, serving

ADMIN = {"Authorization": "Bearer secret", "Content-Type": "application/json"}
ROUTES = [
    ("GET", "/admin/status"),
    ("POST", "/admin/reload"),
    ("POST", "/admin/rollout"),
    ("POST", "/admin/rollout/end"),
]


@pytest.fixture
def port():
    champion = LoadedModel("1", fitted(0.5))
    app = create_app(
        SPEC.name,
        DTYPES,
        lambda: champion,
        admin_token="secret",
        version_loader={"2": CHALLENGER}.__getitem__,
        schema=RULES,
    )
    with serving(app) as port:
        yield port


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", "secret", "Bearer", "Bearer secret x", "Bearer secretx", "Bearer  secret", "Basic secret"],
)
def test_every_admin_route_needs_the_token(port, method, path, authorization):
    headers = {"Content-Type": "application/json"} | ({"Authorization": authorization} if authorization else {})
    status, _, body = call(port, method, path, b"{}" if method == "POST" else None, headers)
    assert status == 401 and json.loads(body)["error_code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("authorization", ["Bearer secret ", " Bearer secret", "Bearer secret\t", "bearer secret"])
def test_the_token_is_read_as_http_defines_the_field(port, authorization):
    """Whitespace around a field value is not part of it (RFC 9110 5.5) and the scheme is case-insensitive: the
    answer must not depend on whether the server's HTTP parser strips the value (httptools 0.9 does, 0.6 did not)."""
    headers = {"Content-Type": "application/json", "Authorization": authorization}
    status, _, body = call(port, "GET", "/admin/status", None, headers)
    assert status == 200 and json.loads(body)["model_version"] == "1"


def test_the_status_answers_with_the_token(port):
    status, _, body = call(port, "GET", "/admin/status", None, ADMIN)
    assert status == 200 and json.loads(body)["model_version"] == "1"


@pytest.mark.parametrize(
    ("rollout", "message"),
    [
        ({"mode": "canary", "challenger_version": "2", "share": "x"}, "share must be a number between 0 and 1"),
        ({"mode": "canary", "challenger_version": "2", "share": 0}, "share must be a number between 0 and 1"),
        ({"mode": "canary", "challenger_version": "2", "share": 1.5}, "share must be a number between 0 and 1"),
        ({"mode": "canary", "challenger_version": "2", "share": True}, "share must be a number between 0 and 1"),
        ({"mode": "blue-green", "challenger_version": "2"}, "mode must be one of ['canary', 'shadow', 'ab']"),
        ({"mode": "canary", "challenger_version": 2}, "challenger_version must be a registered version as a string"),
        ({"mode": "canary"}, "challenger_version must be a registered version as a string"),
        ({"mode": "canary", "challenger_version": "2", "sticky_key": 7}, "sticky_key must be a column name or null"),
        ({"mode": "canary", "challenger_version": "2", "weight": 3}, "unknown field(s) ['weight']"),
        ([1, 2], "the body must be a JSON object"),
        ("{oops", "invalid rollout"),
    ],
)
def test_a_bad_rollout_is_refused_naming_the_field_and_changes_nothing(port, rollout, message):
    """A share of "x" was once accepted, after which every request failed with a plain-text 500."""
    for _ in range(3):
        assert call(port, "POST", "/invocations", rows(1))[0] == 200
    before = json.loads(call(port, "GET", "/admin/status", None, ADMIN)[2])
    sent = rollout.encode() if isinstance(rollout, str) else json.dumps(rollout).encode()
    status, _, body = call(port, "POST", "/admin/rollout", sent, ADMIN)
    assert status == 400 and message in json.loads(body)["message"]
    assert json.loads(call(port, "GET", "/admin/status", None, ADMIN)[2]) == before
    status, headers, answer = call(port, "POST", "/invocations", rows(1))
    assert status == 200 and headers["X-Model-Version"] == "1" and json.loads(answer)["predictions"]


def test_a_valid_rollout_still_starts(port):
    status, _, body = call(port, "POST", "/admin/rollout", b'{"mode": "canary", "challenger_version": "2"}', ADMIN)
    assert status == 200 and json.loads(body)["rollout"]["share"] == 0.1
