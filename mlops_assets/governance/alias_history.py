"""Which version held ``champion`` and ``challenger`` when: one immutable record per alias move.

MLflow keeps only where an alias points now, so the framework keeps the history: each move is an ``alias``
record of the pipeline's audit trail (``governance.audit``), after the moves recorded before the trail under
``<pipeline>/aliases/``. ``mlops-assets history`` reads it, and a rollback follows it:
it undoes the move that made the current champion, back to the last different champion, and a
second rollback goes further back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from mlops_assets.contracts import ArtifactStore
from mlops_assets.errors import MlopsError
from mlops_assets.governance.audit import append_event, read_events, trail_prefix
from mlops_assets.naming import TrailEvent

PROMOTE, ROLLBACK, RESTORE, TRAIN = "promote", "rollback", "restore", "train"  # why an alias moved
WITHDRAW = "withdraw"  # the alias removed: a first champion the endpoint could not load
UNDOING = (ROLLBACK, RESTORE)  # moves back down the line of champions


class RollbackError(MlopsError):
    """A rollback that cannot happen: there is no earlier, different champion to return to."""


class AliasMoved(MlopsError):
    """An alias moved since a decision read it: the compare-and-set of a move lost, and nothing moved."""


@dataclass(frozen=True)
class AliasMove:
    alias: str  # "champion" or "challenger"
    version: str  # where the alias points after the move ("" once withdrawn)
    previous: str | None  # where it pointed before
    action: str  # PROMOTE, ROLLBACK, RESTORE (a version the endpoint could not load) or TRAIN
    by: str  # who approved it, or what trained it
    dagster_run_id: str
    time: str = ""  # set when recorded
    seq: int | None = None  # its place in the audit trail (None: recorded before the trail)


def record_alias_move(store: ArtifactStore, pipeline: str, move: AliasMove, moves_seen: int | None = None) -> str:
    """Add ``move`` to the pipeline's audit trail; return its key.

    With ``moves_seen`` (how many moves of the alias the caller's decision read) the move is recorded only if
    no other move of the alias was recorded since, and ``AliasMoved`` is raised otherwise: of two runs that
    decided on the same champion, one moves it."""
    record = {k: v for k, v in asdict(move).items() if k not in ("time", "seq")}

    def unmoved() -> None:
        moves = read_alias_moves(store, pipeline, move.alias)
        if len(moves) != moves_seen:
            raise AliasMoved(
                f"{move.alias} of {pipeline} moved to v{moves[-1].version} ({moves[-1].action} by {moves[-1].by}) "
                f"since this run read it; v{move.version} was not moved there"
            )

    return append_event(store, pipeline, TrailEvent.alias, record, unmoved if moves_seen is not None else None)


def read_alias_moves(store: ArtifactStore, pipeline: str, alias: str) -> list[AliasMove]:
    """The moves of ``alias``, oldest first."""
    fields = AliasMove.__dataclass_fields__
    records = read_events(store, pipeline, TrailEvent.alias)
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
            f"({len(moves)} champion move(s) in the trail under {trail_prefix(pipeline)}/), so there is no earlier "
            "champion to return to; to serve another version, train and deploy it"
        )
    return line[-2]


def rolled_back(moves: list[AliasMove], version: str) -> AliasMove | None:
    """The latest rollback away from ``version``, if a person rolled it back."""
    return next((m for m in reversed(moves) if m.action == ROLLBACK and m.previous == version), None)


@dataclass(frozen=True)
class Span:
    """A version's time holding an alias: from the move that made it, until the next move (None: holds it now)."""

    version: str
    since: str
    until: str | None
    move: AliasMove  # the move that began it: why, and by whom


def alias_spans(moves: list[AliasMove]) -> list[Span]:
    """The spans of one alias's moves, oldest first; a withdrawal ends a span and begins none."""
    spans = [
        Span(move.version, move.time, following.time if following else None, move)
        for move, following in zip(moves, [*moves[1:], None], strict=True)
    ]
    return [span for span in spans if span.version]


def holder_at(moves: list[AliasMove], at: dt.datetime) -> Span | None:
    """The span of the version that held the alias at ``at``."""
    when = at
    held = [s for s in alias_spans(moves) if dt.datetime.fromisoformat(s.since) <= when]
    span = held[-1] if held else None
    if span is None or (span.until is not None and dt.datetime.fromisoformat(span.until) <= when):
        return None
    return span
