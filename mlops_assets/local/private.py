"""State that only its owner may read: files created 0600, folders 0700, whatever the umask.

The state is not for other users of the machine: the inference log keeps every request's features, the
registry and the audit trail hold the models and who approved them, an endpoint's state file its admin token.
The framework creates its folders with ``private_folder`` (each missing level: ``os.makedirs`` gives the parents
the umask's mode) and its files with ``open_private``; ``LocalLayout.ensure`` keeps ``MLOPS_HOME`` itself 0700,
so that what MLflow and Dagster write inside it, with modes of their own, is the owner's alone too.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(path: str | Path) -> Path:
    """``path`` as a folder, each level that is missing created 0700 (existing ones are left as they are)."""
    path = Path(path)
    missing = []
    level = path
    while not level.exists():
        missing.append(level)
        level = level.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            folder.mkdir(FOLDER_MODE)
    return path


def open_private(path: str | Path, append: bool = False) -> BinaryIO:
    """``path`` opened to write bytes (truncated, or appended to), created 0600."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    return os.fdopen(os.open(path, flags, FILE_MODE), "ab" if append else "wb")


def keep_private(path: str | Path, mode: int) -> None:
    """Take others' access to ``path`` away (``mode``: ``FILE_MODE`` or ``FOLDER_MODE``) when this user owns it:
    state made before the framework created it private, or by a tool that does not."""
    with contextlib.suppress(FileNotFoundError):
        if os.stat(path).st_uid == os.getuid() and os.stat(path).st_mode & 0o077:
            os.chmod(path, mode)
