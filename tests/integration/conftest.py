"""Every test in this folder starts a process or serves on a real socket: marked ``integration``, which
``make test-fast`` leaves out."""

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # a conftest's collection hook sees the whole session's items, not only this folder's
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)
