"""The audit trail (issue 19, findings 3 and 4), attacked on a real embedded default in the attack's folder.

Each attack materializes breast_cancer with Dagster (the local MLflow registry, the trail in the local store,
endpoints as local processes, the Dagster instance at DAGSTER_HOME), then writes to the store as anyone with
write access to it could, without the audit key, and runs `mlops-assets audit verify` as a process of its own.
Two promotions at once run two ``DeploymentRun``s (what ``deployed_endpoint`` runs) in threads over the same
store, registry and deployer, made to meet just before either records its move of ``champion``.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from attacks.attack import Attack, Outcome

REPO = Path(__file__).resolve().parents[2]
NAME = "breast_cancer"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
CLEARED = ("MLOPS_AUDIT_KEY", "MLOPS_AUDIT_KEY_FILE", "MLFLOW_TRACKING_URI", "MLOPS_ENV")


@dataclass
class World:
    folder: Path
    pipelines: Path
    layout: object  # LocalLayout
    instance: object  # DagsterInstance

    @property
    def store(self):
        from mlops_assets.resources.artifact_store import FsspecArtifactStore

        return FsspecArtifactStore(root=str(self.layout.data))

    def materialize(self, *names: str):
        import dagster as dg

        from mlops_assets.definitions.folder import build_definitions
        from mlops_assets.resources import local_resources

        defs = build_definitions(self.pipelines, local_resources(self.layout))
        assets = [a for a in defs.assets if a.key.path[0] == NAME]
        return dg.materialize(
            assets,
            selection=[dg.AssetKey([NAME, n]) for n in names] or None,
            resources=local_resources(self.layout).by_key(),
            instance=self.instance,
            raise_on_error=False,
            run_config=QUIET,
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "mlops_assets.cli", *args]
        return subprocess.run(command, cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=300)

    def verify(self) -> tuple[int, str]:
        """`audit verify`'s exit code and its first line."""
        done = self.cli("audit", "verify", NAME)
        return done.returncode, (done.stdout.strip() or done.stderr.strip()).splitlines()[0]


@contextmanager
def world(folder: Path, requires_approval: bool) -> Iterator[World]:
    """The embedded default under ``folder`` (its own MLOPS_HOME, DAGSTER_HOME and copy of the pipelines), its
    audit key the default one made under MLOPS_HOME; endpoints stopped and the environment restored after."""
    import dagster as dg

    from mlops_assets.local.instance import write_instance_settings
    from mlops_assets.local.layout import LocalLayout
    from mlops_assets.serving.endpoint_state import stop

    pipelines = folder / "pipelines"
    shutil.copytree(REPO / "pipelines", pipelines)
    spec = pipelines / f"{NAME}.yaml"
    raw = yaml.safe_load(spec.read_text())
    raw.setdefault("deployment", {})["requires_approval"] = requires_approval
    spec.write_text(yaml.safe_dump(raw))
    settings = {"MLOPS_HOME": folder / "home", "DAGSTER_HOME": folder / "dagster", "MLOPS_PIPELINES": pipelines}
    saved = {name: os.environ.get(name) for name in (*settings, *CLEARED)}
    for name in CLEARED:
        os.environ.pop(name, None)
    os.environ.update({name: str(value) for name, value in settings.items()})
    write_instance_settings(folder / "dagster")
    layout = LocalLayout.from_env().ensure()
    instance = dg.DagsterInstance.get()
    try:
        yield World(folder, pipelines, layout, instance)
    finally:
        for state in layout.endpoints.glob("*.json"):
            stop(layout.endpoints, state.stem)
        instance.dispose()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def forged_approval(folder: Path) -> Outcome:
    from mlops_assets.naming import CHAMPION

    with world(folder, requires_approval=True) as w:
        waiting = w.materialize()
        assert waiting.success, "the first materialization failed"
        forged = forge(w.store, "approval", model_version="1", approved_by="alice", reason="card reviewed")
        rc, line = w.verify()
        deployed = w.materialize("deployed_endpoint")
        promoted = bool(deployed.asset_materializations_for_node(f"{NAME}__deployed_endpoint"))
        champion = _champion(w, CHAMPION)
    held = rc == 1 and forged in line and not promoted and champion is None
    return Outcome(
        f"hand-hashed approval {forged.rsplit('/', 1)[-1]} by alice: verify rc {rc} ({_tail(line)}); "
        f"deployed_endpoint: {'PROMOTED v1' if promoted else 'not promoted'}, champion {champion or 'none'}",
        held,
    )


def deleted_tail(folder: Path) -> Outcome:
    from mlops_assets.governance.audit import trail_key

    with world(folder, requires_approval=False) as w:
        assert w.materialize().success, "the first materialization failed"
        before, _ = w.verify()
        seq = len(w.store.list(f"{NAME}/trail"))
        Path(w.store.uri(trail_key(NAME, seq))).unlink()
        rc, line = w.verify()
    held = before == 0 and rc == 1 and f"record {seq} is missing" in line
    return Outcome(f"verify rc {before} before; last record {seq} deleted: rc {rc} ({_tail(line)})", held)


def rehashed_chain(folder: Path) -> Outcome:
    with world(folder, requires_approval=False) as w:
        assert w.materialize().success, "the first materialization failed"
        before, _ = w.verify()
        alice = lambda r: {k: ("alice" if k == "approved_by" else v) for k, v in r.items()}  # noqa: E731
        rehash(w.store, alice)  # the keys kept, as they were
        kept_rc, kept_line = w.verify()
        rehash(w.store, lambda r: {k: v for k, v in alice(r).items() if k not in ("key_id", "mac")})
        rc, line = w.verify()
    held = before == 0 and kept_rc == 1 and rc == 1 and "rewritten" in line
    return Outcome(
        f"approved_by -> alice, chain re-hashed: macs kept: rc {kept_rc} ({_tail(kept_line)}); "
        f"macs stripped: rc {rc} ({_tail(line)})",
        held,
    )


def one_approval_two_promotions(folder: Path) -> Outcome:
    from mlops_assets.governance.alias_history import PROMOTE, read_alias_moves
    from mlops_assets.governance.audit import read_decisions
    from mlops_assets.naming import CHAMPION
    from mlops_assets.resources import local_resources
    from mlops_assets.rollout.deployment import DeploymentRun
    from mlops_assets.spec import load_spec

    with world(folder, requires_approval=True) as w:
        assert w.materialize().success, "the first materialization failed"
        approved = w.cli("approve", NAME, "--version", "1", "--by", "alice", "--reason", "card reviewed")
        assert approved.returncode == 0, approved.stderr[-500:]
        resources = local_resources(w.layout)
        store = _meeting_store()(root=str(w.layout.data))
        spec_path = w.pipelines / f"{NAME}.yaml"
        report = pickle.loads((w.layout.dagster_io / NAME / "evaluation_report").read_bytes())

        def deploy(run: int):
            args = (resources.registry, resources.deployer, report, lambda *_: [], logging, f"attack-run-{run}")
            deployment = DeploymentRun(load_spec(spec_path), str(spec_path), store, *args)
            return deployment.carry_out(rollback=False, strategy="replace", approver=None)

        with ThreadPoolExecutor(2) as pool:
            outcomes = list(pool.map(deploy, (1, 2)))
        moves = [m for m in read_alias_moves(store, NAME, CHAMPION) if m.action == PROMOTE]
        actions = [d["action"] for d in read_decisions(store, NAME) if d.get("dagster_run_id", "").startswith("attack")]
        champion = _champion(w, CHAMPION)
    held = len(moves) == 1 and sorted(actions) == ["champion kept", "replace"] and champion == "1"
    kinds = ", ".join(type(o).__name__ for o in outcomes)
    return Outcome(
        f"two runs on alice's approval met before moving champion: {len(moves)} promote record(s), decisions "
        f"{sorted(actions)} ({kinds}), champion v{champion}",
        held,
    )


def _champion(w: World, alias: str) -> str | None:
    from mlops_assets.resources import local_resources

    champion = local_resources(w.layout).registry.by_alias(NAME, alias)
    return champion and champion.version


def forge(store, kind: str, **facts) -> str:
    """Append a record by hand: the next number, the right prev_hash, canonical bytes, no audit key."""
    from mlops_assets.governance.audit import canonical, digest, read_trail, trail_key

    head = read_trail(store, NAME)[-1]
    prev = digest(store.read_bytes(trail_key(NAME, head["seq"])))
    record = {**facts, "seq": head["seq"] + 1, "prev_hash": prev, "kind": kind, "time": head["time"], "pipeline": NAME}
    store.write_bytes(trail_key(NAME, record["seq"]), canonical(record))
    return trail_key(NAME, record["seq"])


def rehash(store, change: Callable[[dict], dict]) -> None:
    """Rewrite every record by ``change`` and link the chain anew, as a writer of the store could."""
    from mlops_assets.governance.audit import GENESIS, canonical, digest, read_trail, trail_key

    prev = GENESIS
    for record in read_trail(store, NAME):
        data = canonical(change({**record, "prev_hash": prev}))
        store.write_bytes(trail_key(NAME, record["seq"]), data)
        prev = digest(data)


def _meeting_store():
    from pydantic import PrivateAttr

    from mlops_assets.resources.artifact_store import FsspecArtifactStore

    class MeetingStore(FsspecArtifactStore):
        """The local store, where the first two records of a champion move wait for each other: both runs
        have read the champion and the approval before either records its move."""

        _meeting: threading.Barrier = PrivateAttr(default_factory=lambda: threading.Barrier(2, timeout=60))
        _waiting: int = PrivateAttr(default=2)
        _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

        def create(self, key: str, data: bytes) -> None:
            record = json.loads(data)
            with self._lock:
                meets = record.get("kind") == "alias" and record.get("alias") == "champion" and self._waiting > 0
                self._waiting -= meets
            if meets:
                self._meeting.wait()
            super().create(key, data)

    return MeetingStore


def _tail(line: str, width: int = 170) -> str:
    """Verify's line without the temporary folder, cut to ``width``."""
    text = re.sub(r"\S*/(trail/\d+\.json)", r"\1", line).replace("|", "/")
    return (text[:width] + "...") if len(text) > width else text


ATTACKS = [
    Attack(
        "trail: forged appended approval",
        "verify exits 1 naming the forged record; deployed_endpoint does not promote on it",
        forged_approval,
    ),
    Attack("trail: deleted tail", "verify exits 1: the record Dagster's anchor names is missing", deleted_tail),
    Attack("trail: re-hashed chain", "verify exits 1, with the macs kept or stripped", rehashed_chain),
    Attack(
        "trail: one approval, two promotions",
        "of two runs at once on one approval, one promotes and one keeps the champion",
        one_approval_two_promotions,
    ),
]
