"""What applying would change: a server-side-apply dry run of each object, against the live one.

Because the dry run goes through the API server's defaulting and admission, defaulted fields
(imagePullPolicy, protocol: TCP, ...) never show as changes. Server bookkeeping (managedFields,
status, resourceVersion, uid, timestamps, generation) is hidden and Secret data is masked.
Planning only reads: whatever stops it, nothing was written.
"""

from __future__ import annotations

import copy
import hashlib
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

from compiler.reconcile.changeset import Action, Change
from compiler.reconcile.client import Cluster
from compiler.reconcile.errors import PlanError, Refused, api_message, classify, conflicts_of, is_immutable
from compiler.reconcile.handover import replicas_to_hand_over
from compiler.reconcile.inventory import PART_OF_LABEL, ApplySet, members, other_project, owned
from compiler.reconcile.objects import Desired, ObjectRef, model_of
from compiler.targets.kubernetes.labels import MANAGED_BY

FIELD_MANAGER = "modelops"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
PARALLEL_REQUESTS = 8
HIDDEN_METADATA = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink")
HIDDEN_ANNOTATIONS = ("deployment.kubernetes.io/revision", "kubectl.kubernetes.io/last-applied-configuration")


def clean(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as a reviewer wants to see it: no server bookkeeping, no secret values."""
    result = copy.deepcopy(obj)
    result.pop("status", None)
    metadata = result.get("metadata", {})
    for key in HIDDEN_METADATA:
        metadata.pop(key, None)
    annotations = metadata.get("annotations") or {}
    for key in HIDDEN_ANNOTATIONS:
        annotations.pop(key, None)
    if not annotations:
        metadata.pop("annotations", None)
    if result.get("kind") == "Secret":
        for key in ("data", "stringData"):
            if isinstance(result.get(key), dict):
                result[key] = {
                    k: f"*** (sha256 {hashlib.sha256(str(v).encode()).hexdigest()[:8]})"
                    for k, v in result[key].items()
                }
    return result


def body_for(desired: Desired, applysets: dict[str, ApplySet]) -> dict[str, Any]:
    """What modelops sends: the object, labelled as a member of its namespace's ApplySet."""
    applyset = applysets.get(desired.ref.namespace or "")
    return owned(desired.body, applyset) if applyset else desired.body


def server_side_apply(
    cluster: Cluster,
    desired: Desired,
    body: dict[str, Any],
    *,
    force: bool,
    dry_run: bool = False,
    manager: str = FIELD_MANAGER,
) -> dict[str, Any]:
    ref = desired.ref
    result: dict[str, Any] = (
        cluster.resource(desired.api_version, ref.kind)
        .server_side_apply(
            body=body,
            name=ref.name,
            namespace=ref.namespace,
            field_manager=manager,
            force_conflicts=force,
            dry_run="All" if dry_run else None,
        )
        .to_dict()
    )
    return result


def _live(cluster: Cluster, desired: Desired) -> dict[str, Any] | None:
    from kubernetes.dynamic.exceptions import NotFoundError

    resource = cluster.resource(desired.api_version, desired.ref.kind)
    try:
        found: dict[str, Any] = resource.get(name=desired.ref.name, namespace=desired.ref.namespace).to_dict()
    except NotFoundError:
        return None
    return found


def _change(cluster: Cluster, desired: Desired, body: dict[str, Any], force_conflicts: bool) -> Change:
    """One object's Change: two round trips, a GET and a dry run (two when fields conflict)."""
    from kubernetes.client.exceptions import ApiException

    live = _live(cluster, desired)
    before = clean(live) if live else None
    conflicts: tuple[str, ...] = ()
    try:
        try:
            merged = server_side_apply(cluster, desired, body, force=force_conflicts, dry_run=True)
        except ApiException as error:
            if error.status != 409:
                raise
            # Someone else owns fields we set (a hand edit, another tool): show what taking
            # them over would change, and say whose fields they are.
            conflicts = tuple(conflicts_of(error))
            merged = server_side_apply(cluster, desired, body, force=True, dry_run=True)
    except ApiException as error:
        if not is_immutable(error):
            raise
        # Only a delete and re-create can make this object what we want.
        return Change(
            desired.ref,
            Action.RECREATE,
            desired.model,
            desired,
            live,
            before,
            clean(body),
            (api_message(error),),
        )
    after = clean(merged)
    handing_over = (replicas := replicas_to_hand_over(desired, live, FIELD_MANAGER)) is not None
    if handing_over:  # apply keeps the count, and must write to let go of it (see handover)
        after["spec"]["replicas"] = replicas
    if conflicts:
        action = Action.CONFLICT
    elif live is None:
        action = Action.CREATE
    else:
        action = Action.UNCHANGED if before == after and not handing_over else Action.UPDATE
    return Change(desired.ref, action, desired.model, desired, live, before, after, conflicts)


def _parallel(cluster: Cluster, objects: list[Desired], one: Any) -> list[Change]:
    """`one` for each object, eight requests at a time; the first failure stops the rest."""
    if not objects:
        return []
    with ThreadPoolExecutor(max_workers=PARALLEL_REQUESTS) as pool:
        futures = [pool.submit(one, desired) for desired in objects]
        wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            future.cancel()  # those not started; the others end within the request timeout
    return [future.result() for future in futures]


def _prune_candidates(cluster: Cluster, objects: list[Desired], applysets: list[ApplySet]) -> list[Change]:
    wanted = {d.ref for d in objects}
    found = []
    for applyset in applysets:
        for member in members(cluster, applyset):
            ref = ObjectRef.of(member)
            if ref not in wanted:
                found.append(Change(ref, Action.PRUNE, model_of(member), None, member, clean(member)))
    return found


def plan(
    cluster: Cluster, objects: list[Desired], applysets: list[ApplySet], *, force_conflicts: bool = False
) -> list[Change]:
    """One Change per desired object (in apply order), plus one per owned object that the
    output no longer has. Raises PlanError, or Refused when another project's or environment's
    inventory holds the namespace or an object, having written nothing."""
    by_namespace = {a.namespace: a for a in applysets}
    try:
        claimed = [(a, owner) for a in applysets if (owner := other_project(cluster, a)) is not None]
        changes = [] if claimed else _changes(cluster, objects, applysets, by_namespace, force_conflicts)
    except Exception as error:
        raise PlanError(classify(error, cluster.timeout)) from error
    if claimed:
        raise Refused("\n".join(_claimed(applyset, owner) for applyset, owner in claimed))
    _refuse_foreign(changes, by_namespace)
    return changes


def _changes(
    cluster: Cluster,
    objects: list[Desired],
    applysets: list[ApplySet],
    by_namespace: dict[str, ApplySet],
    force_conflicts: bool,
) -> list[Change]:
    # Each namespace of the output, read once: a missing one holds nothing yet (no dry run is
    # possible in it), one someone else made is left as it is.
    namespaces = {d.ref.name: _live(cluster, d) for d in objects if d.ref.kind == "Namespace"}
    new_namespaces = {name for name, live in namespaces.items() if live is None}

    def one(desired: Desired) -> Change:
        body = body_for(desired, by_namespace)
        if desired.ref.namespace in new_namespaces:
            return Change(desired.ref, Action.CREATE, desired.model, desired, after=clean(body))
        live = namespaces.get(desired.ref.name) if desired.ref.kind == "Namespace" else None
        if live is not None and _made_elsewhere(live):
            return Change(
                desired.ref, Action.UNCHANGED, desired.model, desired, live, clean(live), clean(live)
            )
        return _change(cluster, desired, body, force_conflicts)

    return _parallel(cluster, objects, one) + _prune_candidates(cluster, objects, applysets)


def _made_elsewhere(namespace: dict[str, Any]) -> bool:
    """Whether a live namespace was made by someone else (a team's, kube-system): createNamespace
    makes a missing namespace, and leaves one it did not make as it is, since restricted pod
    security there would stop others' pods."""
    return (namespace["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) != MANAGED_BY


def _claimed(applyset: ApplySet, owner: str) -> str:
    return (
        f"namespace {applyset.namespace} is managed by modelops project {owner!r} (so says the "
        f"ConfigMap {applyset.name} there); nothing was applied. Two projects cannot share an "
        "environment's namespace in one cluster: give this environment another namespace. If this "
        f"project was renamed from {owner!r}, delete that ConfigMap: the objects stay, and the next "
        "apply makes them this project's."
    )


def _refuse_foreign(changes: list[Change], applysets: dict[str, ApplySet]) -> None:
    """A live object that another inventory lists (another environment of this project in the
    same namespace, kubectl's ApplySet) is not taken over: the two would overwrite each other."""
    found = []
    for change in changes:
        if change.live is None or change.desired is None:
            continue
        labels = change.live.get("metadata", {}).get("labels") or {}
        applyset = applysets.get(change.ref.namespace or "")
        part_of = labels.get(PART_OF_LABEL)
        if applyset is not None and part_of is not None and part_of != applyset.id:
            found.append(f"  {change.ref}: a member of {part_of}, not of {applyset.name}'s {applyset.id}")
    if found:
        raise Refused(
            "\n".join(
                [
                    "objects that another inventory owns (another modelops environment or project, or "
                    "kubectl, applies them there); nothing was applied. Give this environment a namespace "
                    "of its own, or take the objects out of the other inventory:",
                    *found,
                ]
            )
        )
