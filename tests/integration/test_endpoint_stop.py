"""A stop ends the endpoint's process (a stand-in started here) and keeps its address, not its token."""

import subprocess
import sys

from mlops_assets.serving.endpoint_state import read_state, state_file, stop, write_state


def stand_in(seconds: int) -> subprocess.Popen:
    """A process that stands in for an endpoint, returned once it takes SIGTERM as the real one does (uvicorn
    installs its own handler before it listens). Where the test process runs as a background job, SIGINT is
    ignored and Dagster copies that to SIGTERM, which children inherit: a SIGTERM sent before the stand-in's
    own handler is in place would be lost."""
    code = (
        f"import signal, time; signal.signal(signal.SIGTERM, signal.SIG_DFL); print(flush=True); time.sleep({seconds})"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    process.stdout.readline()
    return process


def test_a_stop_ends_the_process_and_keeps_the_address_without_the_token(tmp_path):
    process = stand_in(60)
    try:
        write_state(state_file(tmp_path, "p"), {"url": "http://127.0.0.1:1", "pid": process.pid, "admin_token": "t"})
        assert stop(tmp_path, "p")
        assert process.wait(30) < 0
        assert read_state(tmp_path, "p") == {"url": "http://127.0.0.1:1"}
        assert not stop(tmp_path, "p")
    finally:
        process.kill()


def test_a_stop_after_a_crash_leaves_alone_a_process_that_took_the_endpoint_s_pid_since(tmp_path):
    """Issue 19: the endpoint crashed, and the system gave its pid to another process; a stop must not signal it.
    The state file is the crashed endpoint's, written for its process; only its pid is now another's."""
    import json

    endpoint = stand_in(60)
    write_state(state_file(tmp_path, "p"), {"url": "http://127.0.0.1:1", "pid": endpoint.pid, "admin_token": "t"})
    endpoint.kill()  # the crash
    endpoint.wait(30)
    unrelated = stand_in(60)
    try:
        crashed = read_state(tmp_path, "p")
        state_file(tmp_path, "p").write_text(json.dumps({**crashed, "pid": unrelated.pid}))  # the pid, reused
        assert not stop(tmp_path, "p")
        assert unrelated.poll() is None  # still running, never signalled
        assert read_state(tmp_path, "p") == {"url": "http://127.0.0.1:1"}  # stopped all the same: no restart
    finally:
        unrelated.kill()
