"""The endpoint's state file: its address outlives the process, a stop is told from a crash, the token stays private."""

import socket

from mlops_assets.serving.endpoint_state import (
    crashed_url,
    endpoint_port,
    forget_process,
    read_state,
    running_url,
    state_file,
    write_state,
)


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_port_asked_for_wins_then_the_declared_one_then_the_one_it_had():
    had = {"url": "http://127.0.0.1:40123"}
    assert endpoint_port(5000, 8080, had) == 5000
    assert endpoint_port(None, 8080, had) == 8080
    assert endpoint_port(None, 0, had) == 40123
    assert endpoint_port(None, 0, {}) == 0


def test_the_state_file_is_readable_by_its_owner_alone(tmp_path):
    path = state_file(tmp_path, "p")
    write_state(path, {"url": "http://127.0.0.1:1", "pid": 1, "admin_token": "secret"})
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_state(tmp_path, "p")["admin_token"] == "secret"


def test_an_endpoint_meant_to_run_where_nothing_listens_has_crashed(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}"
    write_state(state_file(tmp_path, "p"), {"url": url, "pid": 999_999})
    assert crashed_url(tmp_path, "p") == url and running_url(tmp_path, "p") is None
    write_state(state_file(tmp_path, "p"), {"url": url})  # stopped: its address kept, no process
    assert crashed_url(tmp_path, "p") is None
    assert crashed_url(tmp_path, "never_started") is None


def test_a_clean_exit_forgets_only_its_own_process(tmp_path):
    path = state_file(tmp_path, "p")
    write_state(path, {"url": "http://127.0.0.1:1", "pid": 2, "admin_token": "t"})
    forget_process(path, 1)  # an older process, replaced since: the file is the newer one's
    assert read_state(tmp_path, "p")["pid"] == 2
    forget_process(path, 2)
    assert read_state(tmp_path, "p") == {"url": "http://127.0.0.1:1"}
