"""Where the audit key comes from (the variable, a mounted file, or one made under MLOPS_HOME), and that records
signed with a retired key verify only while that key is kept below the current one."""

import logging
import re
import stat

import pytest

from mlops_assets.governance.audit import append_event, verify_trail
from mlops_assets.governance.audit_key import AuditKeyError, key_id, load_keys
from mlops_assets.naming import TrailEvent
from tests.unit.fakes import MemoryArtifactStore

OLD, NEW = "old-key-" + "0" * 24, "new-key-" + "1" * 24


@pytest.fixture(autouse=True)
def no_key_set(monkeypatch, tmp_path):
    for name in ("MLOPS_AUDIT_KEY", "MLOPS_AUDIT_KEY_FILE", "MLOPS_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))


def test_the_embedded_default_makes_one_random_key_under_mlops_home_readable_by_its_owner_only(tmp_path):
    first = load_keys()
    path = tmp_path / "home" / "audit.key"
    assert first.source == str(path) and len(first.keys) == 1 and len(first.keys[0]) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_keys() == first  # made once, then read
    assert [p.name for p in path.parent.iterdir()] == ["audit.key"]  # no draft left behind


def test_the_variable_comes_before_the_file_and_the_file_before_the_default(monkeypatch, tmp_path):
    secret = tmp_path / "secret" / "key"
    secret.parent.mkdir()
    secret.write_text(f"{NEW}\n{OLD}\n")
    monkeypatch.setenv("MLOPS_AUDIT_KEY_FILE", str(secret))
    keys = load_keys()
    assert (keys.keys, keys.source) == ((NEW.encode(), OLD.encode()), str(secret))
    assert keys.signing_id == key_id(NEW.encode())
    monkeypatch.setenv("MLOPS_AUDIT_KEY", OLD)
    assert load_keys().keys == (OLD.encode(),)
    assert not (tmp_path / "home" / "audit.key").exists()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MLOPS_AUDIT_KEY", "short", "audit key 1 is shorter than 16 bytes"),
        ("MLOPS_AUDIT_KEY_FILE", "/nonexistent/key", "MLOPS_AUDIT_KEY_FILE=/nonexistent/key: cannot read"),
    ],
)
def test_a_short_or_unreadable_key_is_refused_naming_where_it_was_read(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(AuditKeyError, match=re.escape(message)):
        load_keys()


def test_production_without_a_key_warns_that_no_other_pod_shares_the_default(monkeypatch, caplog):
    monkeypatch.setenv("MLOPS_ENV", "production")
    with caplog.at_level(logging.WARNING):
        load_keys()
    assert "no other pod shares" in caplog.text and "MLOPS_AUDIT_KEY_FILE" in caplog.text


def test_after_a_rotation_old_records_verify_while_the_retired_key_is_kept_below_the_new_one(monkeypatch):
    store = MemoryArtifactStore()
    monkeypatch.setenv("MLOPS_AUDIT_KEY", OLD)
    append_event(store, "p", TrailEvent.decision, {"action": "replace"})
    monkeypatch.setenv("MLOPS_AUDIT_KEY", f"{NEW} {OLD}")
    append_event(store, "p", TrailEvent.decision, {"action": "replace"})
    result = verify_trail(store, "p")
    assert result.ok and result.keys == {key_id(OLD.encode()): 1, key_id(NEW.encode()): 1}
    assert f"1 record(s) signed with a retired key {key_id(OLD.encode())}" in result.describe()
    monkeypatch.setenv("MLOPS_AUDIT_KEY", NEW)  # the old key dropped: its records no longer verify
    result = verify_trail(store, "p")
    assert not result.ok and result.records == 0
    assert f"is signed with key {key_id(OLD.encode())}, not one held here ($MLOPS_AUDIT_KEY" in result.problem
