"""`mlops-assets status`: what it says of a pipeline, read through the contracts alone."""

import json
from pathlib import Path

from mlops_assets.cli.status import describe
from mlops_assets.naming import CHAMPION, StorePrefix, store_key
from mlops_assets.spec import load_spec
from tests.unit.fakes import MemoryArtifactStore, MemoryModelRegistry

REPO = Path(__file__).resolve().parents[3]
SPEC = load_spec(REPO / "pipelines" / "breast_cancer.yaml")


def test_status_names_the_champion_its_holdout_its_card_and_the_newest_drift_report(tmp_path):
    store, registry = MemoryArtifactStore(), MemoryModelRegistry()
    registry.register(SPEC.name, {"dataset_hash": "d1", "trigger": "manual"}, {"holdout_roc_auc": 0.9})
    registry.register(SPEC.name, {"dataset_hash": "d2", "trigger": "drift"}, {"holdout_roc_auc": 0.95})
    registry.promote(SPEC.name, "2", "alice")
    card = store_key(SPEC.name, StorePrefix.evaluation_reports, "v2", "model_card.md")
    store.write_bytes(card, b"# card")
    for name, status in (("20261201T100000.000000Z-a", "drifted"), ("20261201T110000.000000Z-b", "no drift")):
        report = {"status": status, "drifted_features": [], "verdict": ""}
        store.write_bytes(store_key(SPEC.name, StorePrefix.drift_reports, f"{name}.json"), json.dumps(report).encode())

    text = describe([(SPEC, None)], tmp_path / "endpoints", store, registry)

    assert f"{CHAMPION}: version 2 (approved by alice)" in text
    assert "holdout: roc_auc 0.9500" in text and "dataset d2" in text and "trigger drift" in text
    assert f"model card: {store.uri(card)}" in text
    assert "latest drift report: no drift, memory://breast_cancer/reports/drift/20261201T110000.000000Z-b.md" in text
    assert "endpoint: not running" in text


def test_status_of_a_pipeline_without_a_champion_says_so(tmp_path):
    text = describe([(SPEC, None)], tmp_path, MemoryArtifactStore(), MemoryModelRegistry())
    assert text.splitlines() == [f"{SPEC.name} (binary, target diagnosis)", "  no champion yet"]
