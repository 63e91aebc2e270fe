"""Server-side apply in stages, only where the dry run shows a change; then prune and wait.

Failures are safe: the first error stops the apply and the report says what was applied and
what was not; running again converges, and a second apply right after a first writes nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from compiler.reconcile.client import Cluster
from compiler.reconcile.diff import FIELD_MANAGER, Change, api_message, conflicts_of, is_immutable
from compiler.reconcile.inventory import ApplySet, owned, recorded_group_kinds
from compiler.reconcile.objects import Desired

DEFAULT_PRUNE_SHARE = 0.5


class ApplyError(Exception):
    """The apply stopped; `str()` says why and what to do, `report` what was done before."""

    def __init__(self, message: str, report: ApplyReport | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class ApplyReport:
    applied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    not_applied: list[str] = field(default_factory=list)


def _apply_one(cluster: Cluster, body: dict[str, Any], desired: Desired, force_conflicts: bool) -> None:
    cluster.resource(desired.api_version, desired.kind).server_side_apply(
        body=body,
        name=desired.name,
        namespace=desired.namespace,
        field_manager=FIELD_MANAGER,
        force_conflicts=force_conflicts,
    )


def apply_changes(
    cluster: Cluster,
    changes: list[Change],
    applysets: list[ApplySet],
    *,
    force_conflicts: bool = False,
    force: bool = False,
    prune: bool = False,
    prune_share: float = DEFAULT_PRUNE_SHARE,
    allow_mass_delete: bool = False,
) -> ApplyReport:
    from kubernetes.client.exceptions import ApiException

    report = ApplyReport()
    conflicts = [c for c in changes if c.status == "conflict"]
    if conflicts and not force_conflicts:
        lines = [f"  {c.ref}: {detail}" for c in conflicts for detail in c.conflicts]
        raise ApplyError(
            "field conflicts with another manager; nothing was applied. Take the fields over with "
            "--force-conflicts, or remove them from the other manager:\n" + "\n".join(lines)
        )
    immutable = [c for c in changes if c.status == "recreate"]
    if immutable and not force:
        lines = [f"  {c.ref}: {detail}" for c in immutable for detail in c.conflicts]
        raise ApplyError(
            "fields that cannot change in place changed; nothing was applied. Re-run with --force to "
            "delete and recreate these objects (their pods restart):\n" + "\n".join(lines),
            report,
        )
    by_namespace = {a.namespace: a for a in applysets}
    desired_changes = [c for c in changes if c.desired is not None]
    recorded: set[str] = set()

    def record_kinds(namespace: str) -> None:
        """Before owning anything in a namespace (once it exists), record every kind we will own
        there, so that a failed apply can still prune what it created."""
        if namespace in recorded or namespace not in by_namespace:
            return
        applyset = by_namespace[namespace]
        kinds = {
            c.desired.group_kind for c in desired_changes if c.desired and c.desired.namespace == namespace
        }
        _apply_parent(cluster, applyset, kinds | recorded_group_kinds(cluster, applyset))
        recorded.add(namespace)

    pending = list(desired_changes)
    while pending:
        change = pending.pop(0)
        desired = change.desired
        assert desired is not None
        if change.status == "unchanged":
            report.unchanged.append(desired.ref)
            continue
        body = (
            owned(desired.body, by_namespace[desired.namespace])
            if desired.namespace in by_namespace
            else desired.body
        )
        try:
            if desired.namespace:
                record_kinds(desired.namespace)
            if change.status == "recreate":
                _recreate(cluster, body, desired)
                report.applied.append(desired.ref)
                continue
            _apply_one(cluster, body, desired, force_conflicts)
        except ApiException as error:
            report.not_applied = [c.ref for c in [change, *pending] if c.status != "unchanged"]
            if error.status == 409:
                raise ApplyError(
                    f"{desired.ref}: conflict: {'; '.join(conflicts_of(error))}", report
                ) from error
            if is_immutable(error):
                raise ApplyError(
                    f"{desired.ref}: a field that cannot change in place changed ({api_message(error)}). "
                    "Re-run with --force to delete and recreate the object (its pods restart)",
                    report,
                ) from error
            raise ApplyError(
                f"{desired.ref}: the API server refused it: {api_message(error)}", report
            ) from error
        except Exception as error:  # connection refused, timeouts: the server went away
            report.not_applied = [c.ref for c in [change, *pending] if c.status != "unchanged"]
            reason = str(error).splitlines()[0][:200] if str(error) else ""
            raise ApplyError(
                f"{desired.ref}: cannot reach the API server ({type(error).__name__}: {reason})", report
            ) from error
        report.applied.append(desired.ref)
    if prune:
        report.pruned = _prune(cluster, changes, prune_share, allow_mass_delete)
    for applyset in applysets:  # now the parent lists only the kinds that still have members
        kinds = {
            c.desired.group_kind
            for c in desired_changes
            if c.desired and c.desired.namespace == applyset.namespace
        }
        if not prune:
            kinds |= recorded_group_kinds(cluster, applyset)
        if kinds != recorded_group_kinds(cluster, applyset):
            _apply_parent(cluster, applyset, kinds)
    return report


def _apply_parent(cluster: Cluster, applyset: ApplySet, kinds: set[str]) -> None:
    body = applyset.parent(kinds)
    cluster.resource("v1", "ConfigMap").server_side_apply(
        body=body,
        name=applyset.name,
        namespace=applyset.namespace,
        field_manager=FIELD_MANAGER,
        force_conflicts=True,
    )


def _recreate(cluster: Cluster, body: dict[str, Any], desired: Desired, timeout: float = 60) -> None:
    """Delete, wait until the API server has forgotten the object, then apply it anew."""
    from kubernetes.dynamic.exceptions import NotFoundError

    resource = cluster.resource(desired.api_version, desired.kind)
    resource.delete(name=desired.name, namespace=desired.namespace, body={"propagationPolicy": "Background"})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            resource.get(name=desired.name, namespace=desired.namespace)
        except NotFoundError:
            break
        time.sleep(0.2)
    else:
        raise ApplyError(f"{desired.ref}: still there {timeout:g}s after deleting it (a finalizer?)")
    _apply_one(cluster, body, desired, True)


def _prune(cluster: Cluster, changes: list[Change], share: float, allow_mass_delete: bool) -> list[str]:
    candidates = [c for c in changes if c.status == "prune" and c.live is not None]
    owned_total = len(candidates) + sum(
        1 for c in changes if c.desired is not None and c.live is not None and c.desired.namespace
    )
    if candidates and owned_total and len(candidates) / owned_total > share and not allow_mass_delete:
        raise ApplyError(
            f"prune would delete {len(candidates)} of {owned_total} objects modelops owns here "
            f"(more than {share:.0%}); if that is intended, add --prune-allow-mass-delete"
        )
    pruned = []
    for change in candidates:
        live = change.live
        assert live is not None
        metadata = live["metadata"]
        resource = cluster.resource(live["apiVersion"], live["kind"])
        resource.delete(
            name=metadata["name"],
            namespace=metadata.get("namespace"),
            body={"propagationPolicy": "Background"},
        )
        pruned.append(change.ref)
    return pruned


def wait_for_rollout(cluster: Cluster, objects: list[Desired], timeout: float) -> dict[str, str]:
    """Per model: 'ready' once its Deployment has rolled out; raises ApplyError on timeout."""
    deployments = [d for d in objects if d.kind == "Deployment"]
    resource = cluster.resource("apps/v1", "Deployment") if deployments else None
    deadline = time.monotonic() + timeout
    health: dict[str, str] = {}
    while True:
        waiting = []
        for desired in deployments:
            live = resource.get(name=desired.name, namespace=desired.namespace).to_dict()  # type: ignore[union-attr]
            spec, status = live.get("spec", {}), live.get("status") or {}
            wanted = spec.get("replicas", 1)
            done = (
                status.get("observedGeneration", 0) >= live["metadata"].get("generation", 0)
                and status.get("updatedReplicas", 0) >= wanted
                and status.get("availableReplicas", 0) >= wanted
                and status.get("replicas", 0) == status.get("updatedReplicas", 0)
            )
            health[desired.model] = "ready" if done else "progressing"
            if not done:
                conditions = (
                    "; ".join(
                        f"{c.get('type')}={c.get('status')} ({c.get('reason', '')}: {c.get('message', '')})"
                        for c in status.get("conditions") or []
                    )
                    or "no conditions reported"
                )
                waiting.append(
                    f"{desired.ref}: {status.get('availableReplicas', 0)}/{wanted} available, "
                    f"{status.get('updatedReplicas', 0)} updated; {conditions}"
                )
        if not waiting:
            return health
        if time.monotonic() > deadline:
            raise ApplyError(f"timed out after {timeout:g}s waiting for rollouts:\n  " + "\n  ".join(waiting))
        time.sleep(0.5)
