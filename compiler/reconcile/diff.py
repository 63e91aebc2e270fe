"""What applying would change: a server-side-apply dry run of each object, against the live one.

Because the dry run goes through the API server's defaulting and admission, defaulted fields
(imagePullPolicy, protocol: TCP, ...) never show as changes. Server bookkeeping (managedFields,
status, resourceVersion, uid, timestamps, generation) is hidden and Secret data is masked.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import yaml

from compiler.reconcile.client import Cluster
from compiler.reconcile.inventory import ApplySet, members, owned
from compiler.reconcile.objects import Desired

FIELD_MANAGER = "modelops"
PARALLEL_REQUESTS = 8
HIDDEN_METADATA = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink")
HIDDEN_ANNOTATIONS = ("deployment.kubernetes.io/revision", "kubectl.kubernetes.io/last-applied-configuration")


@dataclass
class Change:
    desired: Desired | None
    ref: str
    model: str
    status: str  # added | changed | unchanged | prune | conflict | recreate
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    conflicts: list[str] = field(default_factory=list)
    live: dict[str, Any] | None = None

    def unified(self) -> str:
        old = _dump(self.before) if self.before is not None else []
        new = _dump(self.after) if self.after is not None else []
        return "\n".join(
            difflib.unified_diff(old, new, f"live/{self.ref}", f"merged/{self.ref}", lineterm="")
        )


def _dump(obj: dict[str, Any]) -> list[str]:
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False).splitlines()


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


def conflicts_of(error: Any) -> list[str]:
    """Per-field conflicts from a 409 answer to a server-side apply."""
    try:
        causes = json.loads(error.body).get("details", {}).get("causes", [])
    except (ValueError, AttributeError, TypeError):
        return [str(getattr(error, "reason", error))]
    return [f"{c.get('field', '?')}: {c.get('message', '')}" for c in causes] or [str(error.reason)]


def api_message(error: Any) -> str:
    """The API server's own sentence from an error answer (its Status message)."""
    try:
        return str(json.loads(error.body).get("message", error.reason))
    except (ValueError, TypeError, AttributeError):
        return str(getattr(error, "reason", error))


def is_immutable(error: Any) -> bool:
    """A 422 because a field that cannot change in place changed (a selector, a clusterIP)."""
    return bool(error.status == 422 and "immutable" in str(error.body))


def _live(cluster: Cluster, desired: Desired) -> dict[str, Any] | None:
    from kubernetes.dynamic.exceptions import NotFoundError

    resource = cluster.resource(desired.api_version, desired.kind)
    try:
        found: dict[str, Any] = resource.get(name=desired.name, namespace=desired.namespace).to_dict()
    except NotFoundError:
        return None
    return found


def dry_run(cluster: Cluster, body: dict[str, Any], desired: Desired, force: bool) -> dict[str, Any]:
    resource = cluster.resource(desired.api_version, desired.kind)
    result: dict[str, Any] = resource.server_side_apply(
        body=body,
        name=desired.name,
        namespace=desired.namespace,
        field_manager=FIELD_MANAGER,
        force_conflicts=force,
        dry_run="All",
    ).to_dict()
    return result


def plan(
    cluster: Cluster, objects: list[Desired], applysets: list[ApplySet], *, force_conflicts: bool = False
) -> list[Change]:
    """One Change per desired object, plus one per owned object that the output no longer has."""
    from kubernetes.client.exceptions import ApiException

    by_namespace = {a.namespace: a for a in applysets}
    new_namespaces = {d.name for d in objects if d.kind == "Namespace" and _live(cluster, d) is None}

    def one(desired: Desired) -> Change:
        body = (
            owned(desired.body, by_namespace[desired.namespace])
            if desired.namespace in by_namespace
            else desired.body
        )
        if desired.namespace in new_namespaces:
            return Change(desired, desired.ref, desired.model, "added", None, clean(body))
        live = _live(cluster, desired)
        conflicts: list[str] = []
        try:
            try:
                merged = dry_run(cluster, body, desired, force_conflicts)
            except ApiException as error:
                if error.status != 409:
                    raise
                # Someone else owns fields we set (a hand edit, another tool): show what taking
                # them over would change, and say whose fields they are.
                conflicts = conflicts_of(error)
                merged = dry_run(cluster, body, desired, True)
        except ApiException as error:
            if is_immutable(error):
                # Only a delete and re-create can make this object what we want.
                before = clean(live) if live else None
                recreate = Change(
                    desired, desired.ref, desired.model, "recreate", before, clean(body), live=live
                )
                recreate.conflicts = [api_message(error)]
                return recreate
            raise
        before, after = (clean(live) if live else None), clean(merged)
        if conflicts:
            conflict = Change(desired, desired.ref, desired.model, "conflict", before, after, live=live)
            conflict.conflicts = conflicts
            return conflict
        status = "added" if live is None else ("unchanged" if before == after else "changed")
        return Change(desired, desired.ref, desired.model, status, before, after, live=live)

    # Each object costs two round trips (GET, dry run); they are independent, so overlap them.
    with ThreadPoolExecutor(max_workers=PARALLEL_REQUESTS) as pool:
        changes = list(pool.map(one, objects))
    wanted = {(d.group_kind, d.namespace, d.name) for d in objects}
    for applyset in applysets:
        for member in members(cluster, applyset):
            api_version = member["apiVersion"]
            group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
            group_kind = f"{member['kind']}.{group}" if group else member["kind"]
            key = (group_kind, member["metadata"].get("namespace"), member["metadata"]["name"])
            if key not in wanted:
                ref = f"{member['kind']}/{key[1]}/{key[2]}"
                model = member["metadata"].get("labels", {}).get("app.kubernetes.io/name", "(environment)")
                changes.append(Change(None, ref, model, "prune", clean(member), None, live=member))
    return changes
