"""The audit trail: one hash-chained, keyed, immutable record per event of a pipeline, in the artifact store.

Registrations, retraining triggers, gate results, approvals, deployment decisions (a replace, a canary's
verdict, a shadow or A/B start, a rollback, a restart by the endpoint supervisor) and every move of
``champion`` and ``challenger`` are each one JSON object under ``<pipeline>/trail/``, named by its sequence
number (``00000001.json``, ...), so listing order is chain order and nothing is ever appended to or
rewritten: the trail works on an object store and survives the Dagster instance and the registry it
describes.

Each record carries ``seq``, ``kind``, ``time``, ``pipeline`` and ``prev_hash``, the SHA-256 of the
previous record's stored bytes (the first record's is ``GENESIS``); its bytes are canonical JSON (sorted
keys, no spaces), so a record changed, removed, renamed or slipped in breaks a link that ``verify_trail``
names. A chain alone is no proof of who wrote it: anyone who can write the store can append a record, or
re-hash the chain, and the links still hold. So each record also carries ``key_id`` and ``mac``, an
HMAC-SHA256 of its bytes under the audit key, which is kept outside the store (``governance.audit_key``): a
record without a valid one after the first keyed record is a forgery. Records written before the key
existed have none: ``verify_trail`` counts them as unkeyed, and a deployment honours no approval among them.
Nor can keys show a record deleted from the end: Dagster's event log keeps the number and hash of the
record each ``deployed_endpoint`` outcome wrote (``governance.anchors``), and ``verify_trail`` checks that
the trail still holds each of them, where it was.

Records written before the chain (``<pipeline>/audit/`` and ``<pipeline>/aliases/``, named by time) are
read first, as they were. The chain's first record seals them: it holds each one's SHA-256, so
``verify_trail`` checks them too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlops_assets.contracts import ArtifactStore
from mlops_assets.errors import MlopsError
from mlops_assets.governance.audit_key import AuditKeys, load_keys
from mlops_assets.naming import StorePrefix, TrailEvent, store_key

GENESIS = "0" * 64  # the prev_hash of a trail's first record
SEQ_DIGITS = 8
APPEND_ATTEMPTS = 5  # another writer took the next number: read the head again and take the one after
LEGACY_PREFIXES = (StorePrefix.audit, StorePrefix.aliases)  # records written before the chain
KEY_ID, MAC = "key_id", "mac"  # which audit key signed a record, and its HMAC of the record's other bytes
ENVELOPE = ("seq", "prev_hash", "kind", "time", "pipeline", KEY_ID, MAC)  # what every record carries besides its facts
KEYED, UNKEYED, FORGED, UNKNOWN_KEY = "keyed", "unkeyed", "forged", "unknown key"  # what a record's key shows


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


def signed(record: dict[str, Any], keys: AuditKeys | None = None) -> bytes:
    """The bytes a record is stored as: canonical, with the signing key's id and its HMAC of the rest."""
    keys = keys or load_keys()
    unsigned = {k: v for k, v in record.items() if k != MAC} | {KEY_ID: keys.signing_id}
    return canonical({**unsigned, MAC: keys.mac(canonical(unsigned))})


def key_state(record: dict[str, Any], keys: AuditKeys) -> str:
    """``KEYED`` (its HMAC holds under a key held here), ``UNKEYED`` (written before the audit key), ``FORGED``
    (its HMAC does not hold) or ``UNKNOWN_KEY`` (signed with a key not held here)."""
    if KEY_ID not in record and MAC not in record:
        return UNKEYED
    unsigned = {k: v for k, v in record.items() if k != MAC}
    verified = keys.verifies(str(record.get(KEY_ID)), canonical(unsigned), str(record.get(MAC)))
    return UNKNOWN_KEY if verified is None else KEYED if verified else FORGED


def is_keyed(record: dict[str, Any], keys: AuditKeys | None = None) -> bool:
    """Whether a record read from the trail was written by a holder of the audit key, as it is now."""
    return key_state(record, keys or load_keys()) == KEYED


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
    audit_keys = load_keys()
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
        data = signed(
            {**payload, "seq": seq, "prev_hash": prev_hash, "kind": str(kind), "time": now, "pipeline": pipeline},
            audit_keys,
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


@dataclass(frozen=True)
class Anchor:
    """What Dagster's event log keeps of a trail record an outcome wrote (``governance.anchors`` reads them)."""

    seq: int  # the record's number in the trail
    hash: str  # the SHA-256 of its stored bytes
    run_id: str  # the Dagster run that wrote it
    source: str  # where Dagster keeps it: a materialization or a check evaluation
    record: str  # the record's location (``ArtifactStore.uri``): an anchor of another store says nothing of this one


@dataclass
class Verification:
    pipeline: str
    records: int = 0
    head: str = GENESIS  # the hash the next record will carry
    legacy: int = 0
    unkeyed: int = 0  # records written before the audit key: chained, but anyone could have written them
    keys: Counter = field(default_factory=Counter)  # records per id of the key that signed them
    anchored: int = 0  # the newest record an anchor in Dagster's event log vouches for (0: none)
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


def verify_trail(
    store: ArtifactStore,
    pipeline: str,
    anchors: Sequence[Anchor] | None = None,
    keys: AuditKeys | None = None,
) -> Verification:
    """Check every link of the pipeline's trail, then every record's key, then that the trail still holds each
    record ``anchors`` (from Dagster's event log; ``None``: none read) vouch for; name the first record that
    breaks it.

    Links come first, so a record rewritten in place is named, as before keys, by the link after it."""
    result, records = Verification(pipeline), []
    for position, key in enumerate(_trail_keys(store, pipeline), start=1):
        data = store.read_bytes(key)
        problem = _record_problem(key, data, position, result.head)
        if problem is None and position == 1:
            problem = _seal_problem(store, pipeline, json.loads(data), result)
        if problem:
            result.problem = f"{store.uri(key)}: {problem}"
            return result
        records.append((key, json.loads(data), digest(data)))
        result.records, result.head = position, digest(data)
    if result.records == 0 and _legacy_keys(store, pipeline):
        result.notes.append("only records from before the chain: unsealed until the next event is recorded")
    keys = keys or load_keys()
    result.problem = _key_problem(store, records, keys, result) or _anchor_problem(store, records, anchors, result)
    return result


def _key_problem(store: ArtifactStore, records: list, keys: AuditKeys, result: Verification) -> str | None:
    """The first record whose key does not hold; a record with none is one from before the key only while no
    record before it has one."""
    first_keyed = None
    for position, (key, record, _) in enumerate(records, start=1):
        state = key_state(record, keys)
        if state == KEYED:
            first_keyed = first_keyed or position
            result.keys[record[KEY_ID]] += 1
            continue
        if state == UNKEYED and first_keyed is None:
            result.unkeyed += 1
            continue
        result.records = position - 1
        if state == UNKEYED:
            why = f"has no audit key (mac), yet record {first_keyed} before it has one"
        elif state == FORGED:
            why = f"its mac does not hold under audit key {record.get(KEY_ID)}"
        else:
            why = (
                f"is signed with key {record.get(KEY_ID)}, not one held here ({keys.source}; a key retired by a "
                "rotation verifies only while it stays below the current one)"
            )
        return f"{store.uri(key)}: {why}: forged, or rewritten by a writer without the audit key"
    for kid, count in result.keys.items():
        role = "the audit key" if kid == keys.signing_id else "a retired key"
        result.notes.append(f"{count} record(s) signed with {role} {kid}")
    if result.unkeyed:
        result.notes.append(
            f"{result.unkeyed} record(s) from before the audit key (unkeyed): chained, but anyone who could write "
            "the store could have written them; no approval among them is honoured"
        )
    return None


def _anchor_problem(
    store: ArtifactStore, records: list, anchors: Sequence[Anchor] | None, result: Verification
) -> str | None:
    """The first anchor, newest first, whose record is missing or is not the record it vouches for."""
    if anchors is None:
        result.notes.append("no Dagster instance read (DAGSTER_HOME): a deleted tail would go unseen")
        return None
    ours = [a for a in anchors if a.record == store.uri(trail_key(result.pipeline, a.seq))]
    for anchor in sorted(ours, key=lambda a: a.seq, reverse=True):
        vouched = f"the {anchor.source} of Dagster run {anchor.run_id} keeps its hash ({anchor.hash[:12]}...)"
        if anchor.seq > len(records):
            result.records = len(records)
            return (
                f"record {anchor.seq} is missing: {vouched}, and the trail ends at record {len(records)}: its "
                f"tail was deleted ({store.uri(trail_key(result.pipeline, anchor.seq))})"
            )
        key, _, found = records[anchor.seq - 1]
        if found != anchor.hash:
            result.records = 0
            return f"{store.uri(key)}: hashes to {found[:12]}..., but {vouched}: the chain up to it was rewritten"
    if not ours:
        result.notes.append("no anchor of this trail in the Dagster instance yet: a deleted tail would go unseen")
        return None
    newest = max(ours, key=lambda a: a.seq)
    result.anchored = newest.seq
    result.notes.append(
        f"anchored: record {newest.seq} is the one the {newest.source} of Dagster run {newest.run_id} keeps; "
        f"{len(records) - newest.seq} record(s) after it"
    )
    return None


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
        facts = {k: v for k, v in event.items() if k not in ENVELOPE}
        text = ", ".join(f"{k} {v}" for k, v in sorted(facts.items()) if v not in (None, "", [], {}))
    return f"{event.get('seq', '-'):>4}  {event['time']}  {kind:<12}  {text}"
