"""Which version held ``champion`` and ``challenger`` when: one immutable record per alias move.

MLflow keeps only where an alias points now, so the framework keeps the history, in the artifact store as the
audit log keeps decisions (``<pipeline>/aliases/``, one JSON object per move, named by time). A rollback
follows it: it undoes the move that made the current champion, back to the last different champion, and a
second rollback goes further back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mlops_assets.contracts import ArtifactStore
from mlops_assets.errors import MlopsError
from mlops_assets.naming import StorePrefix, store_key
from mlops_assets.rollout.audit import read_records, write_record

PROMOTE, ROLLBACK, RESTORE, TRAIN = "promote", "rollback", "restore", "train"  # why an alias moved
WITHDRAW = "withdraw"  # the alias removed: a first champion the endpoint could not load
UNDOING = (ROLLBACK, RESTORE)  # moves back down the line of champions


class RollbackError(MlopsError):
    """A rollback that cannot happen: there is no earlier, different champion to return to."""


@dataclass(frozen=True)
class AliasMove:
    alias: str  # "champion" or "challenger"
    version: str  # where the alias points after the move ("" once withdrawn)
    previous: str | None  # where it pointed before
    action: str  # PROMOTE, ROLLBACK, RESTORE (a version the endpoint could not load) or TRAIN
    by: str  # who approved it, or what trained it
    dagster_run_id: str
    time: str = ""  # set when recorded


def alias_prefix(pipeline: str) -> str:
    return store_key(pipeline, StorePrefix.aliases)


def record_alias_move(store: ArtifactStore, pipeline: str, move: AliasMove) -> str:
    """Append ``move`` to the pipeline's alias history; return its key."""
    record = {k: v for k, v in asdict(move).items() if k != "time"}
    return write_record(store, alias_prefix(pipeline), pipeline, record)


def read_alias_moves(store: ArtifactStore, pipeline: str, alias: str) -> list[AliasMove]:
    """The moves of ``alias``, oldest first."""
    fields = AliasMove.__dataclass_fields__
    records = read_records(store, alias_prefix(pipeline))
    return [AliasMove(**{k: v for k, v in r.items() if k in fields}) for r in records if r["alias"] == alias]


def champion_line(moves: list[AliasMove], current: str) -> list[str]:
    """The champions a rollback walks back through, oldest first, ending with ``current``.

    A promotion adds a version (unless it is already the last); a rollback or restore removes the versions
    above the one it returns to. A champion the history does not end with was moved outside the framework
    (by hand in MLflow): it is added last.
    """
    line: list[str] = []
    for move in moves:
        if move.action == WITHDRAW:  # only a first champion is withdrawn: the line starts again
            line.clear()
        elif move.action in UNDOING and move.version in line:
            del line[len(line) - line[::-1].index(move.version) :]
        elif not line or line[-1] != move.version:
            line.append(move.version)
    if not line or line[-1] != current:
        line.append(current)
    return line


def rollback_target(pipeline: str, moves: list[AliasMove], current: str) -> str:
    """The version a rollback of champion ``current`` returns to; ``RollbackError`` says why there is none."""
    line = champion_line(moves, current)
    if len(line) < 2:
        raise RollbackError(
            f"{pipeline} cannot roll back: v{current} is the first champion in its alias history "
            f"({len(moves)} champion move(s) under {alias_prefix(pipeline)}/), so there is no earlier champion to "
            "return to; to serve another version, train and deploy it"
        )
    return line[-2]


def rolled_back(moves: list[AliasMove], version: str) -> AliasMove | None:
    """The latest rollback away from ``version``, if a person rolled it back."""
    return next((m for m in reversed(moves) if m.action == ROLLBACK and m.previous == version), None)
