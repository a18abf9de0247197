"""A rollout is complete when ``kubectl rollout status`` would say so: every replica updated, no old one left,
every updated one available; a passed progress deadline is a failure, not a wait."""

import pytest

from mlops_assets.errors import MlopsError
from mlops_assets.resources.k8s_endpoint import deployment_name, rollout_progress


def deployment(generation=2, observed=2, replicas=3, updated=3, total=3, available=3, conditions=()):
    return {
        "metadata": {"name": "mlops-endpoint-p", "generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "updatedReplicas": updated,
            "replicas": total,
            "availableReplicas": available,
            "conditions": list(conditions),
        },
    }


@pytest.mark.parametrize(
    ("state", "waiting"),
    [
        (deployment(), None),
        (deployment(observed=1), "the controller to see the new pod template"),
        (deployment(updated=1, total=4), "1 of 3 replicas updated"),
        (deployment(total=4), "1 old replicas to terminate"),
        (deployment(available=2), "2 of 3 updated replicas available"),
        (
            {"metadata": {"name": "d", "generation": 1}, "spec": {}, "status": {}},
            "the controller to see the new pod template",
        ),
    ],
)
def test_a_rollout_waits_for_what_kubectl_rollout_status_waits_for(state, waiting):
    assert rollout_progress(state) == waiting


def test_a_rollout_past_its_progress_deadline_fails():
    stuck = {"type": "Progressing", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet has timed out"}
    with pytest.raises(MlopsError, match="exceeded its progress deadline: ReplicaSet has timed out"):
        rollout_progress(deployment(updated=1, conditions=[stuck]))


def test_a_pipeline_name_becomes_a_deployment_name_kubernetes_accepts():
    assert deployment_name("breast_cancer") == "mlops-endpoint-breast-cancer"
    assert deployment_name("Churn_v2") == "mlops-endpoint-churn-v2"
