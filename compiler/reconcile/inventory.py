"""Which objects we own: an ApplySet (KEP-3659) per environment and namespace.

The parent is a ConfigMap `modelops-<env>` in the namespace, labelled with the ApplySet id
and annotated with the group-kinds its members have; every member carries the label
`applyset.kubernetes.io/part-of: <id>`. Prune considers members only: an object without
our label, however similar, is never touched.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from compiler import __version__
from compiler.reconcile.client import Cluster

ID_LABEL = "applyset.kubernetes.io/id"
PART_OF_LABEL = "applyset.kubernetes.io/part-of"
KINDS_ANNOTATION = "applyset.kubernetes.io/contains-group-kinds"
TOOLING_ANNOTATION = "applyset.kubernetes.io/tooling"


@dataclass(frozen=True)
class ApplySet:
    environment: str
    namespace: str

    @property
    def name(self) -> str:
        return f"modelops-{self.environment}"

    @property
    def id(self) -> str:
        digest = hashlib.sha256(f"{self.name}.{self.namespace}.ConfigMap.".encode()).digest()
        return f"applyset-{base64.urlsafe_b64encode(digest).decode().rstrip('=')}-v1"

    def parent(self, group_kinds: set[str]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {ID_LABEL: self.id, "app.kubernetes.io/managed-by": "modelops"},
                "annotations": {
                    TOOLING_ANNOTATION: f"modelops/v{__version__}",
                    KINDS_ANNOTATION: ",".join(sorted(group_kinds)),
                },
            },
        }


def recorded_group_kinds(cluster: Cluster, applyset: ApplySet) -> set[str]:
    from kubernetes.dynamic.exceptions import NotFoundError

    try:
        parent = cluster.resource("v1", "ConfigMap").get(name=applyset.name, namespace=applyset.namespace)
    except NotFoundError:
        return set()
    annotations = parent.to_dict()["metadata"].get("annotations") or {}
    return {k for k in annotations.get(KINDS_ANNOTATION, "").split(",") if k}


def _resource_for(cluster: Cluster, group_kind: str) -> Any:
    kind, _, group = group_kind.partition(".")
    candidates = cluster.dynamic.resources.search(kind=kind, group=group)
    candidates = [c for c in candidates if getattr(c, "namespaced", None) is not None and "/" not in c.name]
    preferred = [c for c in candidates if getattr(c, "preferred", False)]
    return (preferred or candidates or [None])[0]


def members(cluster: Cluster, applyset: ApplySet) -> list[dict[str, Any]]:
    """Every live object labelled as part of the ApplySet, in the kinds the parent records."""
    found: list[dict[str, Any]] = []
    for group_kind in sorted(recorded_group_kinds(cluster, applyset)):
        resource = _resource_for(cluster, group_kind)
        if resource is None:
            continue
        listed = resource.get(namespace=applyset.namespace, label_selector=f"{PART_OF_LABEL}={applyset.id}")
        found += [item.to_dict() for item in listed.items]
    return found


def owned(body: dict[str, Any], applyset: ApplySet) -> dict[str, Any]:
    """A copy of `body` labelled as a member (namespaced objects only; namespaces are never pruned)."""
    copy = {**body, "metadata": {**body["metadata"]}}
    if copy["metadata"].get("namespace"):
        copy["metadata"]["labels"] = {**copy["metadata"].get("labels", {}), PART_OF_LABEL: applyset.id}
    return copy
