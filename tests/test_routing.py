from collections import Counter

from mlops_assets.routing import (
    CANDIDATE,
    CHAMPION,
    ArmStats,
    OnlineComparison,
    Rollout,
    canary_verdict,
    choose_arm,
)


def test_sticky_keys_always_land_on_the_same_arm_and_the_share_holds():
    rollout = Rollout("canary", "3", share=0.2)
    arms = {f"user-{i}": choose_arm(rollout, f"user-{i}") for i in range(20_000)}
    assert all(choose_arm(rollout, key) == arm for key, arm in list(arms.items())[:500])
    share = Counter(arms.values())[CANDIDATE] / len(arms)
    assert 0.18 < share < 0.22


def test_shadow_and_no_rollout_always_answer_with_the_champion():
    assert {choose_arm(Rollout("shadow", "3", share=1.0), str(i)) for i in range(100)} == {CHAMPION}
    assert choose_arm(None) == CHAMPION


def test_canary_waits_for_enough_requests_then_decides():
    calm = ArmStats(requests=900, errors=9)
    assert canary_verdict(calm, ArmStats(requests=50), 100, 0.01) is None
    promoted = canary_verdict(calm, ArmStats(requests=100, errors=1), 100, 0.01)
    assert promoted.promote and promoted.reasons[0].startswith("ok: error rate 0.0100")
    failing = canary_verdict(calm, ArmStats(requests=100, errors=5), 100, 0.01)
    assert not failing.promote and failing.reasons[0].startswith("FAIL")


def test_canary_with_labels_rolls_back_only_a_confidently_worse_challenger():
    champion, candidate = ArmStats(requests=500), ArmStats(requests=100)
    worse = canary_verdict(champion, candidate, 100, 0.01, OnlineComparison("rmse", 50.0, 55.0, 51.5, 58.0), -1.0)
    assert not worse.promote
    assert worse.reasons[1] == (
        "FAIL: online rmse 55.0000 (CI 51.5000-58.0000) vs champion 50.0000; the interval must reach a gain of -1.0"
    )
    noisy = canary_verdict(champion, candidate, 100, 0.01, OnlineComparison("rmse", 50.0, 55.0, 48.0, 60.0), -1.0)
    assert noisy.promote  # the interval reaches the champion: not shown to be worse
    accuracy = OnlineComparison("accuracy", 0.90, 0.85, 0.80, 0.89)
    assert not canary_verdict(champion, candidate, 100, 0.01, accuracy).promote
    assert canary_verdict(champion, candidate, 100, 0.01, accuracy, min_gain=-0.02).promote
