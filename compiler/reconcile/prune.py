"""Prune: delete owned objects that the output no longer has, behind a mass-delete guard.

Only ApplySet members are candidates (see inventory), so an object without our label is never
touched. They go in the reverse of the apply order: workloads before what they refer to.
"""

from __future__ import annotations

from functools import partial

from compiler.reconcile.changeset import Action, Change, Journal, Step
from compiler.reconcile.client import Cluster
from compiler.reconcile.errors import ClusterFailure, Fault, Refused
from compiler.reconcile.order import apply_group


def prune_order(candidates: list[Change]) -> list[Change]:
    return sorted(
        candidates,
        key=lambda c: (-apply_group(c.ref.kind), c.ref.namespace or "", c.ref.name, c.ref.kind),
    )


def check_prune_share(changes: list[Change], candidates: list[Change], share: float, allow: bool) -> None:
    """Refuse (before anything is written) to delete more than `share` of the owned objects."""
    owned_total = len(candidates) + sum(
        1 for c in changes if c.desired is not None and c.live is not None and c.ref.namespace
    )
    if candidates and len(candidates) / owned_total > share and not allow:
        raise Refused(
            f"prune would delete {len(candidates)} of {owned_total} objects modelops owns here "
            f"(more than {share:.0%}); nothing was applied. If that is intended, add "
            "--prune-allow-mass-delete"
        )


def prune(cluster: Cluster, candidates: list[Change], journal: Journal) -> None:
    """Delete each candidate (its dependents in the background), in the order given."""
    for change in candidates:
        journal.write(Step(change.ref, Action.PRUNE), partial(_delete, cluster, change))


def _delete(cluster: Cluster, change: Change) -> None:
    """Delete the very object planned (its uid a precondition): one deleted and made again by
    someone else since the plan, under the same name, is not ours to delete unseen."""
    from kubernetes.client.exceptions import ApiException

    live = change.live
    assert live is not None  # prune candidates are live objects
    body: dict[str, object] = {"propagationPolicy": "Background"}
    if uid := (live.get("metadata") or {}).get("uid"):
        body["preconditions"] = {"uid": uid}
    try:
        cluster.resource(live["apiVersion"], change.ref.kind).delete(
            name=change.ref.name, namespace=change.ref.namespace, body=body
        )
    except ApiException as error:
        if error.status == 404:
            return  # gone already: what prune wanted
        if error.status == 409:
            raise ClusterFailure(
                Fault.CONFLICT,
                "replaced since it was planned (another object of that name is there now); not "
                "deleted: run apply again to see what it is",
            ) from error
        raise
