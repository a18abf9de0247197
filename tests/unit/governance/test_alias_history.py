"""The alias history and the rollback it drives, on records in a real local artifact store."""

import pytest

from mlops_assets.governance.alias_history import (
    PROMOTE,
    RESTORE,
    ROLLBACK,
    TRAIN,
    WITHDRAW,
    AliasMove,
    RollbackError,
    champion_line,
    read_alias_moves,
    record_alias_move,
    rollback_target,
    rolled_back,
)
from mlops_assets.resources.artifact_store import FsspecArtifactStore


def moves(*steps: tuple[str, str]) -> list[AliasMove]:
    """Champion moves from (action, version) pairs, each from the version before."""
    result, previous = [], None
    for action, version in steps:
        result.append(AliasMove("champion", version, previous, action, "tester", "run"))
        previous = version
    return result


def test_moves_are_read_back_in_the_order_they_were_recorded_and_by_alias(tmp_path):
    store = FsspecArtifactStore(root=str(tmp_path))
    for move in [*moves((PROMOTE, "1"), (PROMOTE, "2")), AliasMove("challenger", "3", "2", TRAIN, "manual", "run")]:
        record_alias_move(store, "p", move)
    champion = read_alias_moves(store, "p", "champion")
    assert [(m.version, m.previous) for m in champion] == [("1", None), ("2", "1")]
    assert all(m.time for m in champion)
    assert [m.version for m in read_alias_moves(store, "p", "challenger")] == ["3"]


def test_a_rollback_returns_to_the_champion_before_and_a_second_one_goes_further_back():
    history = moves((PROMOTE, "1"), (PROMOTE, "2"), (PROMOTE, "3"))
    assert rollback_target("p", history, "3") == "2"
    history += moves((ROLLBACK, "2"))
    assert rollback_target("p", history, "2") == "1"
    history += moves((ROLLBACK, "1"))
    with pytest.raises(RollbackError, match="v1 is the first champion"):
        rollback_target("p", history, "1")


def test_the_same_version_promoted_again_is_not_a_champion_to_return_to():
    history = moves((PROMOTE, "1"), (PROMOTE, "2"), (PROMOTE, "2"), (PROMOTE, "2"))
    assert champion_line(history, "2") == ["1", "2"]
    assert rollback_target("p", history, "2") == "1"


def test_a_version_that_could_not_deploy_is_not_a_champion_to_return_to():
    history = moves((PROMOTE, "1"), (PROMOTE, "2"), (PROMOTE, "3"), (RESTORE, "2"))
    assert rollback_target("p", history, "2") == "1"


def test_a_first_champion_withdrawn_because_it_could_not_deploy_is_not_a_champion_to_return_to():
    history = moves((PROMOTE, "1"), (WITHDRAW, ""), (PROMOTE, "2"))
    assert champion_line(history, "2") == ["2"]
    with pytest.raises(RollbackError, match="v2 is the first champion"):
        rollback_target("p", history, "2")


def test_a_champion_moved_outside_the_framework_rolls_back_to_the_last_recorded_one():
    assert rollback_target("p", moves((PROMOTE, "1"), (PROMOTE, "2")), "5") == "2"


def test_without_history_there_is_nothing_to_roll_back_to():
    with pytest.raises(RollbackError, match="no earlier champion"):
        rollback_target("p", [], "4")


def test_the_latest_rollback_away_from_a_version_is_found():
    history = moves((PROMOTE, "1"), (PROMOTE, "2"), (ROLLBACK, "1"))
    assert rolled_back(history, "2") == history[-1]
    assert rolled_back(history, "1") is None
