"""`mlops-assets approve`, `audit` and `history` over a real local store and the in-memory registry: what they
print, their exit codes, and that a refused request writes nothing."""

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from mlops_assets import resources
from mlops_assets.cli.commands import main
from mlops_assets.governance.alias_history import PROMOTE, TRAIN, AliasMove, record_alias_move
from mlops_assets.governance.audit import canonical, read_trail, trail_key
from mlops_assets.naming import CHALLENGER, CHAMPION, TrailEvent
from mlops_assets.resources.artifact_store import FsspecArtifactStore
from tests.unit.fakes import MemoryEndpointDeployer, MemoryModelRegistry, MemoryTrainer

REPO = Path(__file__).resolve().parents[3]
NAME = "breast_cancer"


@pytest.fixture
def env(tmp_path, monkeypatch):
    """The CLI's resources: a local store under ``tmp_path`` and an in-memory registry with v1 (gate passed),
    v2 (gate failed) and v3 (not evaluated)."""
    store, registry = FsspecArtifactStore(root=str(tmp_path / "data")), MemoryModelRegistry()
    for gate in ("passed", "failed", None):
        registry.register(NAME, tags={"gate": gate} if gate else {})
    fakes = resources.Resources(store, registry, MemoryTrainer(), MemoryEndpointDeployer.over(registry), None)
    monkeypatch.setattr(resources, "resources_from_env", lambda: fakes)
    monkeypatch.setenv("MLOPS_PIPELINES", str(REPO / "pipelines"))
    return store, registry


def test_approve_records_who_why_and_when_for_a_gated_version(env, capsys):
    store, _ = env
    assert main(["approve", NAME, "--version", "1", "--by", "alice", "--reason", "card reviewed"]) == 0
    assert "approved breast_cancer v1 by alice" in capsys.readouterr().out
    (record,) = read_trail(store, NAME)
    assert (record["kind"], record["model_version"], record["approved_by"], record["reason"]) == (
        TrailEvent.approval,
        "1",
        "alice",
        "card reviewed",
    )


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("9", "breast_cancer has no version 9 in the registry"),
        ("2", "breast_cancer v2 failed its gate; only a gated version can be approved: nothing approved"),
        ("3", "breast_cancer v3 has not been through the gate"),
    ],
)
def test_approve_refuses_an_unknown_or_ungated_version_and_writes_nothing(env, capsys, version, message):
    store, _ = env
    assert main(["approve", NAME, "--version", version, "--by", "mallory", "--reason", "x"]) == 2
    assert message in capsys.readouterr().err
    assert read_trail(store, NAME) == []


def test_approve_refuses_to_add_to_a_broken_trail(env, capsys):
    store, _ = env
    main(["approve", NAME, "--version", "1", "--by", "alice", "--reason", "first"])
    main(["approve", NAME, "--version", "1", "--by", "bob", "--reason", "second"])
    store.write_bytes(trail_key(NAME, 1), b"{}")
    assert main(["approve", NAME, "--version", "1", "--by", "carol", "--reason", "third"]) == 2
    assert "the audit trail is broken" in capsys.readouterr().err and len(read_trail(store, NAME)) == 2


def test_audit_verify_exits_0_on_a_sound_trail_and_1_naming_the_first_bad_record(env, capsys):
    store, _ = env
    for by in ("alice", "bob", "carol"):
        main(["approve", NAME, "--version", "1", "--by", by, "--reason", "ok"])
    capsys.readouterr()
    assert main(["audit", "verify", NAME]) == 0
    assert capsys.readouterr().out.startswith("breast_cancer: ok, 3 record(s), head ")
    second = json.loads(store.read_bytes(trail_key(NAME, 2)))
    store.write_bytes(trail_key(NAME, 2), canonical({**second, "approved_by": "mallory"}))
    assert main(["audit", "verify", NAME]) == 1
    out = capsys.readouterr().out
    assert "BROKEN after 2 good record(s)" in out and "00000003.json" in out
    assert main(["audit", NAME]) == 0  # the trail is still printed, as it is
    printed = capsys.readouterr().out.splitlines()
    assert printed[1].split()[:3] == ["2", second["time"], "approval"] and "approved_by mallory" in printed[1]


def test_audit_with_pipelines_after_a_single_one_is_refused(env, capsys):
    assert main(["audit", NAME, "wine"]) == 2
    assert "audit takes one pipeline" in capsys.readouterr().err


def test_history_lists_who_held_each_alias_and_answers_for_a_time_from_the_trail(env, capsys):
    store, _ = env
    record_alias_move(store, NAME, AliasMove(CHALLENGER, "1", None, TRAIN, "manual", "r1"))
    record_alias_move(store, NAME, AliasMove(CHAMPION, "1", None, PROMOTE, "gate:auto", "r1"))
    main(["approve", NAME, "--version", "1", "--by", "alice", "--reason", "card reviewed"])
    time.sleep(0.01)  # the trail's times are to the millisecond
    between = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    record_alias_move(store, NAME, AliasMove(CHAMPION, "1", "1", PROMOTE, "alice", "r2"))
    capsys.readouterr()
    assert main(["history", NAME]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split()[:3] == ["alias", "version", "since"] and len(rows) == 4
    assert rows[1].split()[:2] == ["champion", "v1"] and rows[1].endswith("promote by gate:auto")
    assert rows[3].split()[:2] == ["challenger", "v1"] and " now " in rows[3]
    assert main(["history", NAME, "--at", between.isoformat()]) == 0
    answer = capsys.readouterr().out
    assert "champion v1" in answer and "(promote by gate:auto); no approval recorded" in answer
    assert "challenger v1" in answer
    assert main(["history", NAME, "--at", dt.datetime.now(dt.UTC).isoformat()]) == 0
    assert "(promote by alice); approved by alice at " in capsys.readouterr().out
    assert main(["history", NAME, "--at", "2000-01-01"]) == 0
    assert "no champion at 2000-01-01T00:00:00+00:00" in capsys.readouterr().out
    assert main(["history", NAME, "--at", "yesterday"]) == 2
    assert "is not an ISO time" in capsys.readouterr().err
