"""The audit trail: one hash-chained, immutable record per event of a pipeline, in the artifact store.

Registrations, retraining triggers, gate results, approvals, deployment decisions (a replace, a canary's
verdict, a shadow or A/B start, a rollback, a restart by the endpoint supervisor) and every move of
``champion`` and ``challenger`` are each one JSON object under ``<pipeline>/trail/``, named by its sequence
number (``00000001.json``, ...), so listing order is chain order and nothing is ever appended to or
rewritten: the trail works on an object store and survives the Dagster instance and the registry it
describes.

Each record carries ``seq``, ``kind``, ``time``, ``pipeline`` and ``prev_hash``, the SHA-256 of the
previous record's stored bytes (the first record's is ``GENESIS``); its bytes are canonical JSON (sorted
keys, no spaces), so a record changed, removed, renamed or slipped in breaks a link that ``verify_trail``
names. The last record has no successor to vouch for it: ``verify_trail`` reports the head hash, which a
materialization's metadata also keeps (``audit_hash``), to compare against.

Records written before the chain (``<pipeline>/audit/`` and ``<pipeline>/aliases/``, named by time) are
read first, as they were. The chain's first record seals them: it holds each one's SHA-256, so
``verify_trail`` checks them too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mlops_assets.contracts import ArtifactStore
from mlops_assets.errors import MlopsError
from mlops_assets.naming import StorePrefix, TrailEvent, store_key

GENESIS = "0" * 64  # the prev_hash of a trail's first record
SEQ_DIGITS = 8
APPEND_ATTEMPTS = 5  # another writer took the next number: read the head again and take the one after
LEGACY_PREFIXES = (StorePrefix.audit, StorePrefix.aliases)  # records written before the chain


class TrailError(MlopsError):
    """A record could not be added to the trail."""


def trail_prefix(pipeline: str) -> str:
    return store_key(pipeline, StorePrefix.trail)


def trail_key(pipeline: str, seq: int) -> str:
    return store_key(pipeline, StorePrefix.trail, f"{seq:0{SEQ_DIGITS}d}.json")


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes a record is stored as, and hashed by: one spelling per record."""
    return json.dumps(record, default=str, sort_keys=True, separators=(",", ":")).encode()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _trail_keys(store: ArtifactStore, pipeline: str) -> list[str]:
    return [key for key in store.list(trail_prefix(pipeline)) if key.endswith(".json")]


def _legacy_keys(store: ArtifactStore, pipeline: str) -> list[str]:
    keys = [store.list(store_key(pipeline, prefix)) for prefix in LEGACY_PREFIXES]
    return [key for group in keys for key in group if key.endswith(".json")]


def append_event(
    store: ArtifactStore,
    pipeline: str,
    kind: TrailEvent,
    payload: dict[str, Any],
    precondition: Callable[[], None] | None = None,
) -> str:
    """Add one record of ``kind`` to the pipeline's trail; return its key.

    Two writers (two runs of one pipeline) may take the same number: the record is created only where no
    record is (``ArtifactStore.create``: a hard link on a disk, a conditional put on an object store), and
    the writer that loses reads the head again and takes the number after it.

    ``precondition`` makes the append a compare-and-set: it is called after each reading of the head and
    raises when the trail no longer allows the record. The record then takes the number after that head or
    none, so no record it did not see can come between (what a move of ``champion`` needs).
    """
    for _ in range(APPEND_ATTEMPTS):
        keys = _trail_keys(store, pipeline)
        if precondition is not None:
            precondition()
        if keys:
            head = store.read_bytes(keys[-1])
            seq, prev_hash = json.loads(head)["seq"] + 1, digest(head)
        else:
            seq, prev_hash = 1, GENESIS
            legacy = _legacy_keys(store, pipeline)
            if legacy and kind != TrailEvent.legacy:  # seal the records written before the chain, once
                seal = {"records": {key: digest(store.read_bytes(key)) for key in legacy}}
                append_event(store, pipeline, TrailEvent.legacy, seal)
                continue
        key = trail_key(pipeline, seq)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        data = canonical(
            {**payload, "seq": seq, "prev_hash": prev_hash, "kind": str(kind), "time": now, "pipeline": pipeline}
        )
        try:
            store.create(key, data)
        except FileExistsError:
            continue
        return key
    raise TrailError(
        f"could not add a {kind} record to the {pipeline} trail under {trail_prefix(pipeline)}/: another writer "
        f"took the next number {APPEND_ATTEMPTS} times in a row; run again"
    )


def read_trail(store: ArtifactStore, pipeline: str) -> list[dict[str, Any]]:
    """Every chained record of the pipeline, in chain order (unchecked: ``verify_trail`` checks)."""
    return [json.loads(store.read_bytes(key)) for key in _trail_keys(store, pipeline)]


def newest_records(store: ArtifactStore, pipeline: str, depth: int) -> Iterator[dict[str, Any]]:
    """The chained records newest first, ``depth`` at most, each read only when asked for (unchecked): what a
    summary of the latest state reads, however long the chain."""
    for key in reversed(_trail_keys(store, pipeline)[-depth:]):
        yield json.loads(store.read_bytes(key))


def read_legacy(store: ArtifactStore, pipeline: str, prefix: StorePrefix) -> list[dict[str, Any]]:
    """The records written under ``prefix`` before the chain, oldest first."""
    keys = store.list(store_key(pipeline, prefix))
    return [json.loads(store.read_bytes(key)) for key in keys if key.endswith(".json")]


def read_events(store: ArtifactStore, pipeline: str, kind: TrailEvent) -> list[dict[str, Any]]:
    """The records of one kind, oldest first; decisions and alias moves written before the chain first."""
    legacy = {TrailEvent.decision: StorePrefix.audit, TrailEvent.alias: StorePrefix.aliases}.get(kind)
    earlier = read_legacy(store, pipeline, legacy) if legacy else []
    return earlier + [record for record in read_trail(store, pipeline) if record["kind"] == kind]


@dataclass
class Verification:
    pipeline: str
    records: int = 0
    head: str = GENESIS  # the hash the next record will carry: compare it with a copy kept elsewhere
    legacy: int = 0
    problem: str | None = None  # the first bad, missing or reordered record, and why
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        if self.problem:
            return f"{self.pipeline}: BROKEN after {self.records} good record(s): {self.problem}"
        sealed = f", {self.legacy} earlier record(s) sealed by record 1" if self.legacy else ""
        return f"{self.pipeline}: ok, {self.records} record(s){sealed}, head {self.head}" + "".join(
            f"\n  note: {note}" for note in self.notes
        )


def verify_trail(store: ArtifactStore, pipeline: str) -> Verification:
    """Check every link of the pipeline's trail; name the first record that breaks it."""
    result = Verification(pipeline)
    for position, key in enumerate(_trail_keys(store, pipeline), start=1):
        data = store.read_bytes(key)
        problem = _record_problem(key, data, position, result.head)
        if problem is None and position == 1:
            problem = _seal_problem(store, pipeline, json.loads(data), result)
        if problem:
            result.problem = f"{store.uri(key)}: {problem}"
            return result
        result.records, result.head = position, digest(data)
    if result.records == 0 and _legacy_keys(store, pipeline):
        result.notes.append("only records from before the chain: unsealed until the next event is recorded")
    return result


def _record_problem(key: str, data: bytes, position: int, prev_hash: str) -> str | None:
    try:
        record = json.loads(data)
    except ValueError:
        return "not a JSON record (corrupted)"
    if not isinstance(record, dict) or not {"seq", "prev_hash", "kind"} <= record.keys():
        return "not a trail record (no seq, prev_hash or kind)"
    if data != canonical(record):
        return "its bytes were edited (not as the trail writes them)"
    if key != trail_key(record.get("pipeline", ""), record["seq"]):
        return f"holds record {record['seq']} of {record.get('pipeline')!r}: renamed or moved (reordered)"
    if record["seq"] != position:
        return f"is record {record['seq']} where record {position} belongs: record {position} is missing"
    if record["prev_hash"] != prev_hash:
        return (
            f"prev_hash {record['prev_hash'][:12]}... does not match the record before it ({prev_hash[:12]}...): "
            "that record was changed, or this one was forged or inserted"
        )
    return None


def _seal_problem(store: ArtifactStore, pipeline: str, first: dict, result: Verification) -> str | None:
    sealed = first.get("records", {}) if first["kind"] == TrailEvent.legacy else {}
    for key, expected in sealed.items():
        if not store.exists(key):
            return f"seals {key}, which is missing"
        if digest(store.read_bytes(key)) != expected:
            return f"seals {key}, which was changed since"
    result.legacy = len(sealed)
    unsealed = [key for key in _legacy_keys(store, pipeline) if key not in sealed]
    if unsealed:
        result.notes.append(f"{len(unsealed)} record(s) from before the chain not sealed by it, e.g. {unsealed[0]}")
    return None


def record_decision(store: ArtifactStore, pipeline: str, decision: dict[str, Any]) -> str:
    """Add one deployment decision to the trail; return its key."""
    return append_event(store, pipeline, TrailEvent.decision, decision)


def read_decisions(store: ArtifactStore, pipeline: str) -> list[dict[str, Any]]:
    """Every recorded deployment decision of the pipeline, oldest first."""
    return read_events(store, pipeline, TrailEvent.decision)


def describe_decision(event: dict[str, Any]) -> str:
    """One line per decision, for the terminal."""
    return f"{event['time']}  {_decision_text(event)}"


def _decision_text(event: dict[str, Any]) -> str:
    previous, version = event.get("previous_version"), event.get("model_version")
    line = (
        f"{event['action']}: "
        + (f"v{version}" if version else "no champion")
        + (f" (was v{previous})" if previous else "")
        + f" by {event.get('approved_by', '?')}"
    )
    if event.get("reasons"):
        line += " - " + "; ".join(event["reasons"])
    return line


def describe_event(event: dict[str, Any]) -> str:
    """One line per trail record, for the terminal: number, time, kind, what it says."""
    kind = event["kind"]
    if kind == TrailEvent.decision:
        text = _decision_text(event)
    elif kind == TrailEvent.legacy:
        text = f"sealed {len(event.get('records', {}))} record(s) from before the chain"
    else:
        facts = {k: v for k, v in event.items() if k not in {"seq", "prev_hash", "kind", "time", "pipeline"}}
        text = ", ".join(f"{k} {v}" for k, v in sorted(facts.items()) if v not in (None, "", [], {}))
    return f"{event.get('seq', '-'):>4}  {event['time']}  {kind:<12}  {text}"
