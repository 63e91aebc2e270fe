"""Wait until the workloads have rolled out: Deployments by their replica counts, Argo Rollouts
by the health their controller reports (as `kubectl argo rollouts status` reads it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from compiler.reconcile.client import Cluster
from compiler.reconcile.errors import ReconcileError, Stage, classify
from compiler.reconcile.objects import Desired

POLL_SECONDS = 0.5
WORKLOADS = ("Deployment", "Rollout")
MAX_WEIGHT = 100  # Argo Rollouts' default traffic weight scale


@dataclass(frozen=True)
class Health:
    """Where one workload is: rolled out, failed for good, or still on its way (and why)."""

    ready: bool
    failed: bool
    words: str  # for a Rollout: "Progressing, step 2/4, weight 50%"


def _rolled_out(live: dict[str, Any]) -> bool:
    spec, status = live.get("spec", {}), live.get("status") or {}
    wanted = spec.get("replicas", 1)
    return bool(
        status.get("observedGeneration", 0) >= live["metadata"].get("generation", 0)
        and status.get("updatedReplicas", 0) >= wanted
        and status.get("availableReplicas", 0) >= wanted
        and status.get("replicas", 0) == status.get("updatedReplicas", 0)
    )


def _deployment(live: dict[str, Any]) -> Health:
    status = live.get("status") or {}
    conditions = (
        "; ".join(
            f"{c.get('type')}={c.get('status')} ({c.get('reason', '')}: {c.get('message', '')})"
            for c in status.get("conditions") or []
        )
        or "no conditions reported"
    )
    wanted = live.get("spec", {}).get("replicas", 1)
    words = (
        f"{status.get('availableReplicas', 0)}/{wanted} available, "
        f"{status.get('updatedReplicas', 0)} updated; {conditions}"
    )
    return Health(_rolled_out(live), False, words)


def _phase(live: dict[str, Any]) -> tuple[str, str]:
    """The phase and message, unless the controller has not caught up with the spec yet (Argo
    Rollouts' GetRolloutPhase: a status written for an older generation says nothing)."""
    status = live.get("status") or {}
    observed = str(status.get("observedGeneration", ""))  # a string in Rollout status
    if observed.isdigit() and int(observed) < live["metadata"].get("generation", 0):
        return "Progressing", "waiting for the controller to observe the new spec"
    if status.get("controllerPause") and not status.get("pauseConditions"):
        return "Progressing", "waiting for the rollout to unpause"
    if not status.get("phase"):
        return "Progressing", "no status yet: is the Argo Rollouts controller running?"
    return str(status["phase"]), str(status.get("message") or "")


def _weight(steps: list[dict[str, Any]], status: dict[str, Any]) -> int:
    """The traffic weight the current step sets (Argo Rollouts' GetCurrentSetWeight)."""
    if status.get("abort"):
        return 0
    index = int(status.get("currentStepIndex") or 0)
    if index >= len(steps):
        return MAX_WEIGHT
    for step in reversed(steps[: index + 1]):
        if "setWeight" in step:
            return int(step["setWeight"])
    return 0


def rollout_health(live: dict[str, Any]) -> Health:
    """Healthy is done, Degraded (aborted, invalid, past its deadline) is a failure, Paused and
    Progressing are on their way; with canary steps, which step and weight it is at."""
    phase, message = _phase(live)
    status = live.get("status") or {}
    canary = ((live.get("spec") or {}).get("strategy") or {}).get("canary") or {}
    steps = canary.get("steps") or []
    words = phase
    if steps and status.get("phase"):  # before the controller's first status, no step means anything
        index = status.get("currentStepIndex")
        words += f", step {index}/{len(steps)}" if index is not None else ""
        words += f", weight {_weight(steps, status)}%"
    words += f" ({message})" if message else ""
    return Health(phase == "Healthy", phase == "Degraded", words)


def _health(desired: Desired, live: dict[str, Any]) -> Health:
    return rollout_health(live) if desired.ref.kind == "Rollout" else _deployment(live)


def wait_for_rollout(
    cluster: Cluster,
    objects: list[Desired],
    timeout: float,
    on_poll: Callable[[int, int], None] | None = None,
    on_change: Callable[[str, str], None] | None = None,
) -> dict[str, str]:
    """Per model: 'ready' once its workload has rolled out; ReconcileError on timeout, on a
    Rollout that went Degraded, or on a fault. `on_poll(ready, total)` hears how many workloads
    had rolled out at each poll; `on_change(model, words)` each new state of a Rollout."""
    workloads = [d for d in objects if d.ref.kind in WORKLOADS]
    deadline = time.monotonic() + timeout
    said: dict[str, str] = {}
    while True:
        try:
            health = [(d, _health(d, _get(cluster, d))) for d in workloads]
        except Exception as error:
            failure = classify(error, cluster.timeout)
            raise ReconcileError(Stage.WAIT, f"{Stage.WAIT.value} failed: {failure}", failure) from error
        for desired, found in health:
            if desired.ref.kind == "Rollout" and said.get(desired.model) != found.words:
                said[desired.model] = found.words
                if on_change is not None:
                    on_change(desired.model, found.words)
        failed = [f"{d.ref}: {h.words}" for d, h in health if h.failed]
        if failed:
            raise ReconcileError(Stage.WAIT, "rollout failed:\n  " + "\n  ".join(failed))
        waiting = [f"{d.ref}: {h.words}" for d, h in health if not h.ready]
        if on_poll is not None:
            on_poll(len(health) - len(waiting), len(health))
        if not waiting:
            return {d.model: "ready" for d in workloads}
        if time.monotonic() > deadline:
            raise ReconcileError(
                Stage.WAIT, f"timed out after {timeout:g}s waiting for rollouts:\n  " + "\n  ".join(waiting)
            )
        time.sleep(POLL_SECONDS)


def _get(cluster: Cluster, desired: Desired) -> dict[str, Any]:
    resource = cluster.resource(desired.api_version, desired.ref.kind)
    found: dict[str, Any] = resource.get(name=desired.ref.name, namespace=desired.ref.namespace).to_dict()
    return found
