from collections import Counter

from mlops_assets.naming import Strategy
from mlops_assets.records import Rollout
from mlops_assets.serving.routing import CHALLENGER, CHAMPION, ArmStats, OnlineComparison, canary_verdict, choose_arm


def test_sticky_keys_always_land_on_the_same_arm_and_the_share_holds():
    rollout = Rollout(Strategy.canary, "3", share=0.2)
    arms = {f"user-{i}": choose_arm(rollout, f"user-{i}") for i in range(20_000)}
    assert all(choose_arm(rollout, key) == arm for key, arm in list(arms.items())[:500])
    share = Counter(arms.values())[CHALLENGER] / len(arms)
    assert 0.18 < share < 0.22


def test_shadow_and_no_rollout_always_answer_with_the_champion():
    assert {choose_arm(Rollout(Strategy.shadow, "3", share=1.0), str(i)) for i in range(100)} == {CHAMPION}
    assert choose_arm(None) == CHAMPION


def test_canary_waits_for_enough_requests_then_decides():
    calm = ArmStats(requests=900, errors=9)
    assert canary_verdict(calm, ArmStats(requests=50), 100, 0.01) is None
    promoted = canary_verdict(calm, ArmStats(requests=100, errors=1), 100, 0.01)
    assert promoted.promote and promoted.reasons[0].startswith("ok: error rate 0.0100")
    failing = canary_verdict(calm, ArmStats(requests=100, errors=5), 100, 0.01)
    assert not failing.promote and failing.reasons[0].startswith("FAIL")


def test_canary_with_labels_rolls_back_only_a_challenger_whose_gain_interval_misses_min_gain():
    champion, challenger = ArmStats(requests=500), ArmStats(requests=100)
    worse = canary_verdict(
        champion, challenger, 100, 0.01, OnlineComparison("rmse", 50.0, 55.0, -5.0, -8.0, -1.5), -1.0
    )
    assert not worse.promote
    assert worse.reasons[1] == (
        "FAIL: online rmse 55.0000 vs champion 50.0000, gain -5.0000 (CI -8.0000 to -1.5000); "
        "the interval must reach -1.0"
    )
    noisy = OnlineComparison("rmse", 50.0, 55.0, -5.0, -10.0, 0.5)
    assert canary_verdict(champion, challenger, 100, 0.01, noisy, -1.0).promote  # not shown to be worse
    assert not canary_verdict(champion, challenger, 100, 0.01, noisy, min_gain=1.0).promote  # not shown to gain 1
    accuracy = OnlineComparison("accuracy", 0.90, 0.85, -0.05, -0.10, -0.01)
    assert not canary_verdict(champion, challenger, 100, 0.01, accuracy).promote
    assert canary_verdict(champion, challenger, 100, 0.01, accuracy, min_gain=-0.02).promote
