"""The in-memory fakes keep the contracts of ``mlops_assets.contracts``: the store as the local store does it
(the same tests run on both), the registry's aliases and tags as the MLflow registry sets them, the endpoint's
address, versions and rollouts as the local endpoint keeps them."""

from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import pyarrow as pa
import pytest

from mlops_assets.contracts import ArtifactStore, EndpointDeployer, ModelRegistry, Trainer
from mlops_assets.governance.alias_history import PROMOTE, AliasMove, read_alias_moves, record_alias_move
from mlops_assets.governance.audit import read_decisions, record_decision
from mlops_assets.naming import CHALLENGER, CHAMPION
from mlops_assets.records import Rollout, TrainingResult
from mlops_assets.resources.artifact_store import FsspecArtifactStore
from tests.unit.fakes import MemoryArtifactStore, MemoryEndpointDeployer, MemoryModelRegistry, MemoryTrainer


@pytest.fixture(params=["memory", "local", "s3"])
def store(request, tmp_path) -> ArtifactStore:
    """The fake, and the one store on a local folder and on an S3-compatible object store (moto, loopback)."""
    if request.param == "memory":
        return MemoryArtifactStore()
    if request.param == "local":
        return FsspecArtifactStore(root=str(tmp_path))
    return FsspecArtifactStore(root=f"{request.getfixturevalue('s3_bucket')}/data")


def test_each_fake_implements_every_method_of_its_contract():
    """An abstract method left out would make the fake impossible to instantiate."""
    fakes = (MemoryArtifactStore(), MemoryModelRegistry(), MemoryTrainer(), MemoryEndpointDeployer())
    contracts = (ArtifactStore, ModelRegistry, Trainer, EndpointDeployer)
    assert [isinstance(fake, contract) for fake, contract in zip(fakes, contracts, strict=True)] == [True] * 4


def test_the_store_lists_the_keys_under_a_prefix_sorted_and_nothing_beside_it(store):
    for key in ("p/audit/2.json", "p/audit/1.json", "p/auditor/x.json", "p/audit.json", "q/audit/3.json"):
        store.write_bytes(key, key.encode())
    assert store.list("p/audit") == store.list("p/audit/") == ["p/audit/1.json", "p/audit/2.json"]
    assert store.list("p/nothing") == [] and store.list("p/audit.json") == []
    assert store.read_bytes("p/audit/2.json") == b"p/audit/2.json"
    assert store.exists("p/audit.json") and not store.exists("p/audit/3.json")
    with pytest.raises(FileNotFoundError):
        store.read_bytes("p/audit/3.json")
    assert store.uri("p/audit/1.json") != store.uri("p/audit/2.json")


def test_the_store_keeps_tables_as_parquet_and_counts_their_rows(store):
    table = pa.table({"x": [1.0, 2.0, None], "plan": ["a", "b", "c"]})
    written = store.write_table("p/raw/abc.parquet", table)
    assert written > 0 and store.row_count("p/raw/abc.parquet") == 3
    assert store.read_table("p/raw/abc.parquet").equals(table)
    store.write_bytes("p/raw/abc.parquet", b"replaced")  # a key written again holds the new bytes
    assert store.read_bytes("p/raw/abc.parquet") == b"replaced"


def test_a_streamed_write_appears_whole_when_it_ends_and_not_at_all_when_it_fails(store):
    with store.open_write("p/out/batch.bin") as file:
        file.write(b"first half ")
        assert not store.exists("p/out/batch.bin")
        file.write(b"second half")
    assert store.read_bytes("p/out/batch.bin") == b"first half second half"
    with pytest.raises(RuntimeError), store.open_write("p/out/failed.bin") as file:
        file.write(b"half")
        raise RuntimeError("the scoring failed midway")
    assert store.list("p/out") == ["p/out/batch.bin"]


def test_a_key_is_created_once_and_of_many_writers_racing_for_it_exactly_one_wins(store):
    store.create("p/trail/00000001.json", b"first")
    with pytest.raises(FileExistsError):
        store.create("p/trail/00000001.json", b"second")
    assert store.read_bytes("p/trail/00000001.json") == b"first"

    def create(n: int) -> bool:
        try:
            store.create("p/trail/00000002.json", f"writer {n}".encode())
            return True
        except FileExistsError:
            return False

    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(create, range(8)))
    assert won.count(True) == 1
    assert store.read_bytes("p/trail/00000002.json") == f"writer {won.index(True)}".encode()
    assert store.list("p/trail") == ["p/trail/00000001.json", "p/trail/00000002.json"]


def test_a_file_another_process_writes_is_listed_at_once(store, tmp_path):
    """The endpoint ships its log to the store while a long-lived sensor process lists it: no stale listing."""
    store.write_bytes("p/log/part-1.parquet", b"1")
    assert store.list("p/log") == ["p/log/part-1.parquet"]
    if isinstance(store, FsspecArtifactStore):
        from fsspec.core import url_to_fs

        fs, root = url_to_fs(store.uri("p/log/part-2.parquet"))
        fs.skip_instance_cache = True
        fs.pipe_file(root, b"2")  # as another process would: not through this store
    else:
        store.write_bytes("p/log/part-2.parquet", b"2")
    assert store.list("p/log") == ["p/log/part-1.parquet", "p/log/part-2.parquet"]


def test_the_audit_log_and_the_alias_history_read_back_in_order_from_the_store(store):
    for version in ("1", "2", "3"):
        record_decision(store, "p", {"action": "replace", "model_version": version})
        record_alias_move(store, "p", AliasMove(CHAMPION, version, None, PROMOTE, "gate", "run"))
    assert [d["model_version"] for d in read_decisions(store, "p")] == ["1", "2", "3"]
    assert [m.version for m in read_alias_moves(store, "p", CHAMPION)] == ["1", "2", "3"]


def test_the_registry_numbers_versions_per_model_and_tags_promotions_as_mlflow_does():
    registry = MemoryModelRegistry()
    first, second = registry.register("p", tags={"gate": "passed"}), registry.register("p")
    assert (first.version, second.version, registry.register("q").version) == ("1", "2", "1")
    assert registry.by_alias("p", CHAMPION) is None
    assert registry.promote("p", "1", "alice") is None
    assert registry.get("p", "1").tags["previous_champion"] == "none"
    assert registry.promote("p", "2", "bob").version == "1"
    assert (
        registry.get("p", "2").tags["previous_champion"] == "1" and registry.get("p", "2").tags["approved_by"] == "bob"
    )
    assert registry.promote("p", "1", "carol", rollback=True).version == "2"
    assert registry.get("p", "2").tags["rolled_back_by"] == "carol"
    assert registry.get("p", "1").tags["previous_champion"] == "none"  # a rollback leaves it alone
    assert registry.by_alias("p", CHAMPION).version == "1" and registry.get("p", "1").tags["gate"] == "passed"
    with pytest.raises(LookupError):
        registry.promote("p", "9", "alice")


def test_the_registry_hands_out_copies_and_records_tags_metrics_and_artifacts():
    registry = MemoryModelRegistry()
    version = registry.register("p", metrics={"train_loss": 0.5})
    version.tags["edited"] = "outside"
    assert "edited" not in registry.get("p", "1").tags
    registry.record("p", "1", {"gate": "failed"}, {"holdout_roc_auc": 0.9})
    assert registry.get("p", "1").tags == {"gate": "failed"}
    assert registry.metrics("p", "1") == {"train_loss": 0.5, "holdout_roc_auc": 0.9}
    registry.log_artifacts(version.run_id, {"card.md": b"# v1"}, "evaluation")
    assert registry.artifacts(version.run_id) == {"evaluation/card.md": b"# v1"}
    assert registry.experiment("p") == registry.experiment("p") != registry.experiment("q")


def test_the_registry_fails_only_the_running_training_runs_of_one_dagster_run():
    registry = MemoryModelRegistry()
    killed = registry.start_run("p", {"dagster_run_id": "d1"})
    finished = registry.register("p", run_id=registry.start_run("p", {"dagster_run_id": "d1"})).run_id
    other_run = registry.start_run("p", {"dagster_run_id": "d2"})
    other_model = registry.start_run("q", {"dagster_run_id": "d1"})
    assert registry.fail_unfinished_runs("p", "d1") == [killed]
    statuses = [registry.run_status(r) for r in (killed, finished, other_run, other_model)]
    assert statuses == ["FAILED", "FINISHED", "RUNNING", "RUNNING"]
    assert registry.fail_unfinished_runs("p", "d1") == []


def test_the_trainer_answers_with_what_the_process_reported_or_fails_like_one_that_reported_nothing():
    reported = TrainingResult("1", "r1", {"train_auc": 0.9}, {"max_depth": 3}, "cpu", 1.5, 100, False)
    trainer = MemoryTrainer().script(reported, RuntimeError("out of memory"))
    assert trainer.train(None, "request 1") == reported
    with pytest.raises(RuntimeError, match="out of memory"):
        trainer.train(None, "request 2")
    with pytest.raises(dg.Failure, match="ended without reporting a model version"):
        trainer.train(None, "request 3")
    assert trainer.requests == ["request 1", "request 2", "request 3"]


def test_a_training_result_reads_back_from_the_message_the_training_process_reports():
    result = TrainingResult("2", "r2", {"train_rmse": 1.25}, {"lr": 0.01}, "cuda", 3.0, 50, True, "bf16", 4)
    message = result.to_message()
    assert message["version"] == "2" and message["resumed_from_epoch"] == 4
    assert TrainingResult.from_message(message) == result


def test_the_endpoint_keeps_its_address_serves_what_it_was_given_and_refuses_what_it_cannot_load():
    registry = MemoryModelRegistry()
    first, second = registry.register("p"), registry.register("p")
    registry.promote("p", "1", "test")
    deployer = MemoryEndpointDeployer.over(registry)
    assert deployer.running_url("p") is None and deployer.crashed("p") is None
    url = deployer.deploy("p.yaml", first, "log")
    assert deployer.running_url("p") == url and deployer.served_version("p") == "1"
    deployer.refuse("2", "bad pickle")
    with pytest.raises(dg.Failure, match="bad pickle"):
        deployer.deploy("p.yaml", second, "log")
    assert deployer.served_version("p") == "1" and deployer.rollout_status("p").model_version == "1"
    deployer.crash("p")
    assert deployer.crashed("p") == url and deployer.running_url("p") is None
    with pytest.raises(dg.Failure, match="no endpoint is running"):
        deployer.rollout_status("p")
    assert deployer.restart("p") == url and deployer.served_version("p") == "1" and deployer.crashed("p") is None


def test_a_rollout_counts_from_zero_and_its_end_serves_the_registrys_champion_with_the_final_counters():
    registry = MemoryModelRegistry()
    first, _ = registry.register("p"), registry.register("p")
    registry.promote("p", "1", "test")
    deployer = MemoryEndpointDeployer.over(registry)
    deployer.deploy("p.yaml", first, "log")
    deployer.answer("p", CHAMPION, 5)
    started = deployer.start_rollout("p", Rollout("canary", "2", 0.5, "id"))
    assert started.rollout.challenger_version == "2" and started.rollout.started_at
    assert started.arms[CHAMPION]["requests"] == 0
    deployer.answer("p", CHALLENGER, 3, rows=30, errors=1)
    registry.promote("p", "2", "canary")
    final = deployer.end_rollout("p")
    assert final.arms[CHALLENGER] == {"requests": 3, "rows": 30, "errors": 1, "disagreements": 0}
    assert final.model_version == deployer.served_version("p") == "2"
    assert deployer.rollout_status("p").rollout is None
    with pytest.raises(dg.Failure, match="mode must be one of"):
        deployer.start_rollout("p", Rollout("replace", "1"))
