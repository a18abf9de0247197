"""The audit trail's hash chain, on the in-memory store and a real local one: records read back in chain order,
and ``verify_trail`` names the first record that was changed, removed, renamed or slipped in, forged without the
audit key, or cut from the end behind an anchor Dagster keeps."""

import json
from pathlib import Path

import pytest
from pydantic import PrivateAttr

from mlops_assets.governance.audit import (
    GENESIS,
    Anchor,
    append_event,
    canonical,
    digest,
    is_keyed,
    read_decisions,
    read_trail,
    signed,
    trail_key,
    verify_trail,
)
from mlops_assets.naming import StorePrefix, TrailEvent, store_key
from mlops_assets.resources.artifact_store import FsspecArtifactStore
from tests.unit.fakes import MemoryArtifactStore


class EditableMemoryStore(MemoryArtifactStore):
    """The in-memory store, with a way to delete a key behind the trail's back."""

    def remove(self, key: str) -> None:
        del self._objects[key]


class EditableFolderStore(FsspecArtifactStore):
    def remove(self, key: str) -> None:
        Path(self.uri(key)).unlink()


@pytest.fixture(params=["memory", "folder"])
def store(request, tmp_path):
    return EditableMemoryStore() if request.param == "memory" else EditableFolderStore(root=str(tmp_path))


def trail(store, count: int = 4) -> list[str]:
    return [
        append_event(store, "p", TrailEvent.decision, {"action": "replace", "model_version": str(n)})
        for n in range(1, count + 1)
    ]


def test_records_are_numbered_and_linked_in_order_and_a_clean_trail_verifies(store):
    keys = trail(store)
    assert keys == [trail_key("p", n) for n in (1, 2, 3, 4)] == [f"p/trail/0000000{n}.json" for n in (1, 2, 3, 4)]
    records = read_trail(store, "p")
    assert [r["seq"] for r in records] == [1, 2, 3, 4] and records[0]["prev_hash"] == GENESIS
    for before, key, record in zip(keys, keys[1:], records[1:], strict=False):
        assert record["prev_hash"] == digest(store.read_bytes(before))
        assert store.read_bytes(key) == canonical(record)
    result = verify_trail(store, "p")
    assert result.ok and result.records == 4 and result.head == digest(store.read_bytes(keys[-1]))
    assert [d["model_version"] for d in read_decisions(store, "p")] == ["1", "2", "3", "4"]


def rewrite(store, key: str, **changes) -> None:
    record = json.loads(store.read_bytes(key))
    store.write_bytes(key, canonical({**record, **changes}))


def test_a_record_changed_after_the_fact_is_named_by_the_link_after_it(store):
    keys = trail(store)
    rewrite(store, keys[1], model_version="9")  # rewritten as the trail writes: only the next link shows it
    result = verify_trail(store, "p")
    assert not result.ok and result.records == 2
    assert keys[2] in result.problem and "does not match the record before it" in result.problem


def test_a_record_edited_by_hand_is_named_itself(store):
    keys = trail(store)
    store.write_bytes(keys[3], store.read_bytes(keys[3]).replace(b'"model_version":"4"', b'"model_version": "5"'))
    result = verify_trail(store, "p")
    assert not result.ok and keys[3] in result.problem and "edited" in result.problem
    store.write_bytes(keys[3], b"{not json")
    assert "corrupted" in verify_trail(store, "p").problem


def test_a_missing_middle_record_is_named(store):
    keys = trail(store)
    store.remove(keys[1])
    result = verify_trail(store, "p")
    assert not result.ok and keys[2] in result.problem and "record 2 is missing" in result.problem


def test_a_reordered_pair_is_named(store):
    keys = trail(store)
    second, third = store.read_bytes(keys[1]), store.read_bytes(keys[2])
    store.write_bytes(keys[1], third)
    store.write_bytes(keys[2], second)
    result = verify_trail(store, "p")
    assert not result.ok and keys[1] in result.problem and "renamed or moved" in result.problem


def test_a_forged_record_slipped_in_is_named_by_the_record_after_it(store):
    keys = trail(store)
    moved = [store.read_bytes(key) for key in keys[2:]]
    forged = {**json.loads(moved[0]), "model_version": "forged"}  # seq 3, linked to record 2: a good forgery
    store.write_bytes(keys[2], canonical(forged))
    for offset, data in enumerate(moved):  # the genuine records renumbered after it, as a forger would
        record = {**json.loads(data), "seq": 4 + offset}
        store.write_bytes(trail_key("p", 4 + offset), canonical(record))
    result = verify_trail(store, "p")
    assert not result.ok and trail_key("p", 4) in result.problem and "forged or inserted" in result.problem


def test_records_from_before_the_chain_are_read_first_and_sealed_by_its_first_record(store):
    legacy = store_key("p", StorePrefix.audit, "20240101T000000000000Z-abcd.json")
    store.write_bytes(
        legacy,
        json.dumps({"time": "2024-01-01T00:00:00.000+00:00", "action": "replace", "model_version": "0"}).encode(),
    )
    trail(store, 2)
    first = read_trail(store, "p")[0]
    assert (first["kind"], first["records"]) == (TrailEvent.legacy, {legacy: digest(store.read_bytes(legacy))})
    assert [d["model_version"] for d in read_decisions(store, "p")] == ["0", "1", "2"]
    result = verify_trail(store, "p")
    assert result.ok and result.records == 3 and result.legacy == 1
    store.write_bytes(legacy, store.read_bytes(legacy).replace(b'"0"', b'"7"'))
    result = verify_trail(store, "p")
    assert not result.ok and f"seals {legacy}, which was changed since" in result.problem


class RacingStore(MemoryArtifactStore):
    """Another writer takes the same number just before this one creates it, once."""

    _raced: bool = PrivateAttr(default=False)

    def create(self, key: str, data: bytes) -> None:
        if key.startswith("p/trail/") and not self._raced:
            self._raced = True
            super().create(key, signed({**json.loads(data), "model_version": "other writer's"}))
        super().create(key, data)


def test_a_writer_that_lost_the_number_to_another_writes_under_the_next_one():
    store = RacingStore()
    key = append_event(store, "p", TrailEvent.decision, {"action": "replace", "model_version": "1"})
    assert key == trail_key("p", 2)
    assert [r["model_version"] for r in read_trail(store, "p")] == ["other writer's", "1"]
    assert verify_trail(store, "p").ok


def forge(store, pipeline: str, kind: TrailEvent, **facts) -> str:
    """Append a record as a writer of the store without the audit key would: the next number, the right
    ``prev_hash``, canonical bytes; ``facts`` may bring a made-up ``key_id`` and ``mac``. Return its key."""
    head = read_trail(store, pipeline)[-1]
    before = trail_key(pipeline, head["seq"])
    record = {
        **facts,
        "seq": head["seq"] + 1,
        "prev_hash": digest(store.read_bytes(before)),
        "kind": str(kind),
        "time": head["time"],
        "pipeline": pipeline,
    }
    store.write_bytes(trail_key(pipeline, record["seq"]), canonical(record))
    return trail_key(pipeline, record["seq"])


@pytest.mark.parametrize(
    ("key", "why"),
    [
        (None, "has no audit key (mac), yet record 1 before it has one"),
        ("the audit key's id", "its mac does not hold under audit key"),
        ("feedfacefeedface", "is signed with key feedfacefeedface, not one held here"),
    ],
)
def test_an_approval_appended_without_the_audit_key_is_named_as_forged(store, key, why):
    trail(store)
    made_up = {"key_id": read_trail(store, "p")[0]["key_id"] if key == "the audit key's id" else key, "mac": "0" * 64}
    facts = {"model_version": "2", "approved_by": "alice", "reason": "x", **(made_up if key else {})}
    forged = forge(store, "p", TrailEvent.approval, **facts)
    result = verify_trail(store, "p")
    assert not result.ok and result.records == 4
    assert forged in result.problem and why in result.problem and "forged" in result.problem
    assert not is_keyed(read_trail(store, "p")[-1])


def anchor_of(store, key: str) -> Anchor:
    """What Dagster keeps of the record ``key``, as a deployed_endpoint materialization writes it."""
    seq = json.loads(store.read_bytes(key))["seq"]
    return Anchor(seq, digest(store.read_bytes(key)), "run-a", "deployed_endpoint materialization", store.uri(key))


def test_a_deleted_tail_is_named_by_the_anchor_dagster_keeps_and_anchors_of_another_store_say_nothing(store):
    keys = trail(store)
    anchors = [anchor_of(store, keys[3]), Anchor(9, "f" * 64, "run-b", "approval check evaluation", "s3://x/9.json")]
    result = verify_trail(store, "p", anchors)
    assert result.ok and result.anchored == 4
    assert "anchored: record 4 is the one the deployed_endpoint materialization of Dagster run run-a keeps; " in (
        result.describe()
    )
    store.remove(keys[3])
    result = verify_trail(store, "p", anchors)
    assert not result.ok and result.records == 3
    assert result.problem.startswith("record 4 is missing: the deployed_endpoint materialization of Dagster run run-a")
    assert "the trail ends at record 3: its tail was deleted" in result.problem
    unanchored = verify_trail(store, "p")  # no Dagster instance read: the chain alone cannot tell
    assert unanchored.ok and "a deleted tail would go unseen" in unanchored.describe()


def rehash(store, pipeline: str, change) -> None:
    """Rewrite the whole chain as a writer of the store would: each record changed by ``change``, linked anew."""
    prev = GENESIS
    for record in read_trail(store, pipeline):
        data = canonical(change({**record, "prev_hash": prev}))
        store.write_bytes(trail_key(pipeline, record["seq"]), data)
        prev = digest(data)


def test_a_chain_rehashed_whole_fails_on_its_keys_and_stripped_of_them_on_its_anchor(store):
    keys = trail(store)
    anchor = anchor_of(store, keys[3])
    rehash(store, "p", lambda r: {**r, "model_version": "9"} if r["seq"] == 2 else r)
    result = verify_trail(store, "p", [anchor])
    assert not result.ok and keys[1] in result.problem and "mac does not hold" in result.problem
    rehash(store, "p", lambda r: {k: v for k, v in r.items() if k not in ("key_id", "mac")})
    assert verify_trail(store, "p").ok  # no key anywhere: alone, it reads as a trail from before the key
    result = verify_trail(store, "p", [anchor])
    assert not result.ok and keys[3] in result.problem and "the chain up to it was rewritten" in result.problem


def test_records_from_before_the_audit_key_are_counted_unkeyed_until_the_first_keyed_one(store):
    prev = GENESIS
    for seq in (1, 2):  # as the trail wrote them before keys: chained, canonical, no mac
        record = {"seq": seq, "prev_hash": prev, "kind": "approval", "time": "t", "pipeline": "p", "approved_by": "a"}
        store.write_bytes(trail_key("p", seq), canonical(record))
        prev = digest(canonical(record))
    append_event(store, "p", TrailEvent.decision, {"action": "replace", "model_version": "1"})
    result = verify_trail(store, "p")
    assert result.ok and (result.unkeyed, sum(result.keys.values())) == (2, 1)
    assert "2 record(s) from before the audit key (unkeyed)" in result.describe()
    assert [is_keyed(record) for record in read_trail(store, "p")] == [False, False, True]
