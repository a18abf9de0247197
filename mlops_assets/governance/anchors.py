"""Anchors of the audit trail outside the artifact store, in Dagster's event log.

Each outcome of ``deployed_endpoint`` (its materialization, and the ``approval`` check of a run that promoted
nothing) keeps the number and hash of the trail record the run wrote last: ``audit_seq`` and ``audit_hash``. A
writer of the store can cut the trail's tail or rewrite the chain whole, and the chain alone still holds
together; the anchors, in Dagster's database, say which record stood at that number and what it hashed to, so
``verify_trail`` names the cut or the rewrite.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mlops_assets.contracts import ArtifactStore
from mlops_assets.governance.audit import Anchor, digest
from mlops_assets.naming import asset_keys

ANCHOR_DEPTH = 20  # newest outcomes read of each kind: the newest anchor is the one that counts, the others agree
APPROVAL_CHECK = "approval"
_SEQ_IN_NAME = re.compile(r"/trail/(\d+)\.json$")  # a record's number, in the path metadata written before audit_seq


def anchor_metadata(store: ArtifactStore, key: str) -> dict[str, Any]:
    """What an outcome keeps of the trail record ``key`` it wrote last: where it is, its number and its hash."""
    import dagster as dg

    data = store.read_bytes(key)
    return {
        "audit_record": dg.MetadataValue.path(store.uri(key)),
        "audit_seq": json.loads(data)["seq"],
        "audit_hash": digest(data),
    }


def read_anchors(instance, pipeline: str, depth: int = ANCHOR_DEPTH) -> list[Anchor]:
    """The anchors Dagster keeps for ``pipeline``, newest outcomes first: from the materializations of its
    ``deployed_endpoint`` and the evaluations of that asset's ``approval`` check."""
    import dagster as dg

    key = asset_keys(pipeline)["deployed_endpoint"]
    found = []
    for record in instance.fetch_materializations(key, limit=depth).records:
        materialization = record.asset_materialization
        if materialization is not None:
            found.append(_anchor(materialization.metadata, record.run_id, "deployed_endpoint materialization"))
    check = dg.AssetCheckKey(key, APPROVAL_CHECK)
    for execution in instance.event_log_storage.get_asset_check_execution_history(check, limit=depth):
        evaluation = execution.evaluation
        if evaluation is not None:
            found.append(_anchor(evaluation.metadata, execution.run_id, "approval check evaluation"))
    return [anchor for anchor in found if anchor is not None]


def _anchor(metadata: dict, run_id: str, source: str) -> Anchor | None:
    values = {name: getattr(value, "value", value) for name, value in metadata.items()}
    digest, seq, record = values.get("audit_hash"), values.get("audit_seq"), str(values.get("audit_record") or "")
    if seq is None:  # written before audit_seq: the record's path names its number
        found = _SEQ_IN_NAME.search(record)
        seq = found and found.group(1)
    if not digest or not seq or not record:
        return None
    return Anchor(int(seq), str(digest), run_id, source, record)
