"""The audit key: an HMAC-SHA256 key kept outside the artifact store, so that a writer of the store cannot add a
trail record, or rewrite one, that verifies.

Each record of the trail (``governance.audit``) carries ``key_id``, which key signed it, and ``mac``, the
HMAC-SHA256 under that key of its canonical bytes without ``mac``. The key is read, first found, from:

- ``MLOPS_AUDIT_KEY``: the key itself (a CI job, a shell);
- ``MLOPS_AUDIT_KEY_FILE``: a file holding it, in Kubernetes a Secret mounted as a volume (deploy/ mounts
  ``mlops-audit-key``). A file rather than a variable: a variable is inherited by every child process (training
  subprocesses, endpoints) and shown by ``kubectl describe`` of a pod that sets it by value; a mounted Secret is
  readable by this container only, and a rotated Secret reaches the file without a restart;
- the embedded default: ``$MLOPS_HOME/audit.key``, 32 random bytes as hex, mode 0600, made on first use. It is
  one machine's key: with ``MLOPS_ENV=production`` each pod would make its own, so it is used there with a
  warning that names the variable to set.

A value may hold several keys, one per line (or separated by spaces): the first signs, the others only verify.
A rotation puts the new key first and keeps the old one below it for as long as records signed with it are to
verify; a record under a key no longer held fails ``verify_trail``, naming the key's id.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlops_assets.environment import MLOPS_ENV, PRODUCTION
from mlops_assets.errors import MlopsError
from mlops_assets.local.layout import LocalLayout

KEY_VARIABLE = "MLOPS_AUDIT_KEY"
KEY_FILE_VARIABLE = "MLOPS_AUDIT_KEY_FILE"
DEFAULT_KEY_FILE = "audit.key"  # under MLOPS_HOME
MIN_KEY_BYTES = 16
KEY_ID_MESSAGE = b"mlops-assets audit key id"  # what a key's id is the HMAC of: the id names a key, never reveals it

log = logging.getLogger(__name__)


class AuditKeyError(MlopsError):
    """The audit key is missing, unreadable or too short."""


def key_id(key: bytes) -> str:
    return hmac.new(key, KEY_ID_MESSAGE, hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class AuditKeys:
    """The keys this process holds: the first signs, every one verifies."""

    keys: tuple[bytes, ...]
    source: str  # where they were read, for messages

    @property
    def signing_id(self) -> str:
        return key_id(self.keys[0])

    def mac(self, message: bytes) -> str:
        return hmac.new(self.keys[0], message, hashlib.sha256).hexdigest()

    def verifies(self, kid: str, message: bytes, mac: str) -> bool | None:
        """Whether ``mac`` is the HMAC of ``message`` under the key ``kid``; ``None``: that key is not held."""
        key = next((k for k in self.keys if key_id(k) == kid), None)
        if key is None:
            return None
        return hmac.compare_digest(hmac.new(key, message, hashlib.sha256).hexdigest(), str(mac))


def load_keys() -> AuditKeys:
    """The audit keys of this process's environment (see the module's docstring for the order)."""
    if os.environ.get(KEY_VARIABLE):
        return _parse(os.environ[KEY_VARIABLE], f"${KEY_VARIABLE}")
    if os.environ.get(KEY_FILE_VARIABLE):
        path = Path(os.environ[KEY_FILE_VARIABLE])
        try:
            return _parse(path.read_text(), str(path))
        except OSError as exc:
            raise AuditKeyError(
                f"{KEY_FILE_VARIABLE}={path}: cannot read the audit key ({exc.strerror}); mount the Secret holding "
                "it there, or unset the variable"
            ) from None
    path = LocalLayout.from_env().home / DEFAULT_KEY_FILE
    if os.environ.get(MLOPS_ENV) == PRODUCTION:
        log.warning(
            "%s=%s without %s: the audit key is %s, which no other pod shares; records signed here will not verify "
            "elsewhere. Mount the Secret mlops-audit-key and set %s (deploy/ does)",
            MLOPS_ENV,
            PRODUCTION,
            KEY_FILE_VARIABLE,
            path,
            KEY_FILE_VARIABLE,
        )
    return _parse(_default_key(path), str(path))


def _parse(text: str, source: str) -> AuditKeys:
    keys = tuple(word.encode() for word in text.split())
    if not keys:
        raise AuditKeyError(f"{source} holds no audit key; write one, e.g. `openssl rand -hex 32`")
    short = [n for n, key in enumerate(keys, start=1) if len(key) < MIN_KEY_BYTES]
    if short:
        raise AuditKeyError(
            f"{source}: audit key {short[0]} is shorter than {MIN_KEY_BYTES} bytes; use a random one, e.g. "
            "`openssl rand -hex 32`"
        )
    return AuditKeys(keys, source)


def _default_key(path: Path) -> str:
    """The embedded default's key file, made on first use: 0600 from the start, and published whole by a hard
    link, so that of two processes making it at once one key wins and neither reads half of one."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, draft = tempfile.mkstemp(dir=path.parent, prefix=".audit-key-")  # mkstemp: mode 0600
        try:
            with os.fdopen(handle, "w") as out:
                out.write(secrets.token_hex(32) + "\n")
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(draft)
    return path.read_text()
