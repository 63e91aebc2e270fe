"""Wait until the Deployments have rolled out: observed generation, updated and available replicas."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from compiler.reconcile.client import Cluster
from compiler.reconcile.errors import ReconcileError, Stage, classify
from compiler.reconcile.objects import Desired

POLL_SECONDS = 0.5


def _rolled_out(live: dict[str, Any]) -> bool:
    spec, status = live.get("spec", {}), live.get("status") or {}
    wanted = spec.get("replicas", 1)
    return bool(
        status.get("observedGeneration", 0) >= live["metadata"].get("generation", 0)
        and status.get("updatedReplicas", 0) >= wanted
        and status.get("availableReplicas", 0) >= wanted
        and status.get("replicas", 0) == status.get("updatedReplicas", 0)
    )


def _waiting_for(desired: Desired, live: dict[str, Any]) -> str:
    status = live.get("status") or {}
    conditions = (
        "; ".join(
            f"{c.get('type')}={c.get('status')} ({c.get('reason', '')}: {c.get('message', '')})"
            for c in status.get("conditions") or []
        )
        or "no conditions reported"
    )
    wanted = live.get("spec", {}).get("replicas", 1)
    return (
        f"{desired.ref}: {status.get('availableReplicas', 0)}/{wanted} available, "
        f"{status.get('updatedReplicas', 0)} updated; {conditions}"
    )


def wait_for_rollout(
    cluster: Cluster,
    objects: list[Desired],
    timeout: float,
    on_poll: Callable[[int, int], None] | None = None,
) -> dict[str, str]:
    """Per model: 'ready' once its Deployment has rolled out; ReconcileError on timeout or fault.
    `on_poll(ready, total)` hears how many Deployments had rolled out at each poll."""
    deployments = [d for d in objects if d.ref.kind == "Deployment"]
    deadline = time.monotonic() + timeout
    while True:
        try:
            live = [(d, _get(cluster, d)) for d in deployments]
        except Exception as error:
            failure = classify(error, cluster.timeout)
            raise ReconcileError(Stage.WAIT, f"{Stage.WAIT.value} failed: {failure}", failure) from error
        waiting = [_waiting_for(d, obj) for d, obj in live if not _rolled_out(obj)]
        if on_poll is not None:
            on_poll(len(live) - len(waiting), len(live))
        if not waiting:
            return {d.model: "ready" for d in deployments}
        if time.monotonic() > deadline:
            raise ReconcileError(
                Stage.WAIT, f"timed out after {timeout:g}s waiting for rollouts:\n  " + "\n  ".join(waiting)
            )
        time.sleep(POLL_SECONDS)


def _get(cluster: Cluster, desired: Desired) -> dict[str, Any]:
    resource = cluster.resource(desired.api_version, desired.ref.kind)
    found: dict[str, Any] = resource.get(name=desired.ref.name, namespace=desired.ref.namespace).to_dict()
    return found
