"""Only regular files are read as specs: a FIFO, a device or a socket named ``*.yaml`` is a ``SpecError`` naming
the file, at once, and the other specs of the folder still load."""

import os
import socket
import threading
from pathlib import Path

import pytest

from mlops_assets.definitions.folder import SPEC_ERROR_ASSET, build_definitions
from mlops_assets.errors import SpecError
from mlops_assets.spec import load_spec, read_specs


def in_thread(call, timeout_s: float = 10):
    """``call()``'s result, or a failure when it has not returned in ``timeout_s`` (a FIFO blocks an open)."""
    result: list = []

    def run():
        try:
            result.append(call())
        except Exception as exc:
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout_s)
    assert result, f"still blocked after {timeout_s} s"
    return result[0]


def test_a_fifo_named_like_a_spec_is_refused_without_blocking(pipelines):
    fifo = pipelines / "evil.yaml"
    os.mkfifo(fifo)
    error = in_thread(lambda: load_spec(fifo))
    assert isinstance(error, SpecError) and error.path == str(fifo)
    assert "not a regular file (a FIFO)" in str(error)


@pytest.mark.parametrize(
    ("kind", "refusal"),
    [("a character device", "not a regular file (a character device)"), ("a socket", "cannot be read")],
)
def test_a_device_or_a_socket_named_like_a_spec_is_refused(pipelines, tmp_path, kind, refusal):
    path = pipelines / "evil.yaml"
    if kind == "a socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(tmp_path / "s"))  # a socket's path is short; the spec links to it
        path.symlink_to(tmp_path / "s")
    else:
        path.symlink_to("/dev/zero")  # endless: read whole, it would exhaust memory
    error = in_thread(lambda: load_spec(path))
    assert isinstance(error, SpecError) and refusal in str(error)


def test_the_folder_still_loads_around_a_fifo(pipelines):
    os.mkfifo(pipelines / "evil.yaml")
    specs, problems = in_thread(lambda: read_specs(pipelines))
    assert sorted(spec.name for spec, _ in specs) == ["breast_cancer", "diabetes", "wine"]
    assert [Path(p.path).name for p in problems] == ["evil.yaml"]


def test_the_code_location_loads_around_a_fifo_and_shows_it(pipelines):
    os.mkfifo(pipelines / "evil.yaml")
    defs = in_thread(lambda: build_definitions(pipelines), timeout_s=120)
    keys = {s.key.to_user_string() for a in defs.assets for s in getattr(a, "specs", [a])}
    assert f"evil/{SPEC_ERROR_ASSET}" in keys and "breast_cancer/trained_model" in keys
