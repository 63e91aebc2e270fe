"""The test control plane serves Argo Rollouts' API (CRDs from the Go module proxy), with strict
field validation, so generated Rollouts and AnalysisTemplates are checked by the real schema."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import pytest

from tests.testenv.controlplane import ControlPlane

pytestmark = pytest.mark.cluster

NAMESPACE = "rollouts-schema"

ROLLOUT: dict[str, Any] = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Rollout",
    "metadata": {"name": "demo", "namespace": NAMESPACE},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "demo"}},
        "template": {
            "metadata": {"labels": {"app": "demo"}},
            "spec": {"containers": [{"name": "runtime", "image": "registry.example/runtime:1"}]},
        },
        "strategy": {
            "canary": {
                "canaryService": "demo-canary",
                "stableService": "demo-stable",
                "steps": [{"setWeight": 50}, {"pause": {"duration": "5s"}}],
            }
        },
    },
}

ANALYSIS_TEMPLATE: dict[str, Any] = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "AnalysisTemplate",
    "metadata": {"name": "demo", "namespace": NAMESPACE},
    "spec": {
        "metrics": [
            {
                "name": "error-ratio",
                "interval": "1m",
                "failureLimit": 1,
                "successCondition": "result[0] <= 0.001",
                "provider": {
                    "prometheus": {
                        "address": "http://prometheus.example:9090",
                        "query": 'sum(rate(errors_total{version="2"}[2m]))',
                    }
                },
            }
        ]
    },
}


@pytest.fixture(scope="module")
def api(rollouts_plane: ControlPlane) -> Any:
    from kubernetes import config, dynamic
    from kubernetes.client.exceptions import ApiException

    client = dynamic.DynamicClient(config.new_client_from_config(str(rollouts_plane.kubeconfig)))
    with contextlib.suppress(ApiException):  # 409: there already
        client.resources.get(api_version="v1", kind="Namespace").create(
            body={"metadata": {"name": NAMESPACE}}
        )
    return client


def _create_strict(api: Any, obj: dict[str, Any]) -> None:
    resource = api.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    resource.create(
        body=obj, namespace=NAMESPACE, dry_run="All", query_params=[("fieldValidation", "Strict")]
    )


def test_the_api_server_serves_rollouts_and_analysis_templates(api: Any) -> None:
    kinds = {r.kind for r in api.resources.search(group="argoproj.io", api_version="v1alpha1")}
    assert {"Rollout", "AnalysisTemplate", "AnalysisRun", "Experiment", "ClusterAnalysisTemplate"} <= kinds


@pytest.mark.parametrize("obj", [ROLLOUT, ANALYSIS_TEMPLATE], ids=lambda o: str(o["kind"]))
def test_a_valid_object_is_accepted_with_strict_validation(api: Any, obj: dict[str, Any]) -> None:
    _create_strict(api, obj)


def test_a_misspelt_field_is_refused(api: Any) -> None:
    from kubernetes.dynamic.exceptions import DynamicApiError

    rollout = copy.deepcopy(ROLLOUT)
    rollout["spec"]["strategy"]["canary"]["stepz"] = rollout["spec"]["strategy"]["canary"].pop("steps")
    with pytest.raises(DynamicApiError) as refused:
        _create_strict(api, rollout)
    assert refused.value.status == 400
    assert "stepz" in str(refused.value.body)

    template = copy.deepcopy(ANALYSIS_TEMPLATE)
    template["spec"]["metrics"][0]["successCondtion"] = template["spec"]["metrics"][0].pop("successCondition")
    with pytest.raises(DynamicApiError) as refused:
        _create_strict(api, template)
    assert "successCondtion" in str(refused.value.body)


# --- the controllers: a canary runs through its steps ------------------------------------------

SMOKE = "rollouts-smoke"


def _rollout(api: Any, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = api.get_namespaced_custom_object(
        "argoproj.io", "v1alpha1", namespace, "rollouts", name
    )
    return found


def _healthy_on(rollout: dict[str, Any]) -> str | None:
    """The pod-template hash a Rollout is Healthy on, fully promoted; None while it is not."""
    status = rollout.get("status", {})
    done = (
        status.get("phase") == "Healthy"
        and str(status.get("observedGeneration")) == str(rollout["metadata"]["generation"])
        and status.get("stableRS") == status.get("currentPodHash")
        and status.get("availableReplicas") == rollout["spec"]["replicas"]
    )
    return str(status["stableRS"]) if done else None


def test_a_canary_runs_through_its_steps_on_the_controllers(rollouts_cluster: ControlPlane) -> None:
    from kubernetes import client, config

    from tests.testenv.cluster import wait

    api_client = config.new_client_from_config(str(rollouts_cluster.kubeconfig))
    core, apps, custom = (
        client.CoreV1Api(api_client),
        client.AppsV1Api(api_client),
        client.CustomObjectsApi(api_client),
    )
    core.create_namespace({"metadata": {"name": SMOKE}})
    for role in ("stable", "canary"):
        core.create_namespaced_service(
            SMOKE,
            {
                "metadata": {"name": f"demo-{role}"},
                "spec": {"selector": {"app": "demo"}, "ports": [{"port": 80, "targetPort": 8080}]},
            },
        )
    rollout = copy.deepcopy(ROLLOUT)
    rollout["metadata"]["namespace"] = SMOKE
    custom.create_namespaced_custom_object("argoproj.io", "v1alpha1", SMOKE, "rollouts", rollout)

    # the first template is deployed at once, without steps
    first = wait(rollouts_cluster, lambda: _healthy_on(_rollout(custom, SMOKE, "demo")), "the first template")

    patch = {"spec": {"template": {"metadata": {"annotations": {"revision": "2"}}}}}
    custom.patch_namespaced_custom_object("argoproj.io", "v1alpha1", SMOKE, "rollouts", "demo", patch)

    def canary_at_half() -> bool:
        status = _rollout(custom, SMOKE, "demo").get("status", {})
        return bool(status.get("currentStepIndex") == 1 and status.get("stableRS") == first)

    # the canary reaches its 50% step (one of two pods) while the stable still serves...
    wait(rollouts_cluster, canary_at_half, "the canary at its 50% step")
    # ...and is promoted once the pause is over
    second = wait(
        rollouts_cluster, lambda: _healthy_on(_rollout(custom, SMOKE, "demo")), "the promoted canary"
    )
    assert second != first
    replica_sets = {
        rs.metadata.labels["rollouts-pod-template-hash"]: rs
        for rs in apps.list_namespaced_replica_set(SMOKE).items
    }
    assert replica_sets[second].status.ready_replicas == 2
    # the previous stable is scaled down (after Argo's scale-down delay)
    wait(
        rollouts_cluster,
        lambda: not apps.read_namespaced_replica_set(replica_sets[first].metadata.name, SMOKE).spec.replicas,
        "the old ReplicaSet scaled down",
    )
    selector = core.read_namespaced_service("demo-stable", SMOKE).spec.selector
    assert selector["rollouts-pod-template-hash"] == second
