"""Which objects we own: an ApplySet (KEP-3659) per environment and namespace.

The parent is a ConfigMap `modelops-<env>` in the namespace, labelled with the ApplySet id
and annotated with the group-kinds its members have and the project that applies them; every
member carries the label `applyset.kubernetes.io/part-of: <id>`. Prune considers members
only, of kinds modelops renders in a namespace: an object without our label, however similar,
is never touched, nor is a cluster-scoped one whatever the parent lists. The id comes from the
parent's name and namespace (as KEP-3659 has it), so two projects with an environment of the
same name in one namespace would share it: the parent's project annotation keeps them apart.
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
PROJECT_ANNOTATION = "modelops.dev/project"
# What a parent may list as members' kinds: every kind modelops renders into a namespace (a
# kind it rendered once, a Deployment now a Rollout, must stay listed to be pruned).
MEMBER_KINDS = frozenset(
    {
        "ServiceAccount",
        "ConfigMap",
        "Service",
        "AnalysisTemplate",
        "Deployment",
        "Rollout",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ServiceMonitor",
        "PrometheusRule",
    }
)


@dataclass(frozen=True)
class ApplySet:
    project: str
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
                    PROJECT_ANNOTATION: self.project,
                },
            },
        }


def _parent_annotations(cluster: Cluster, applyset: ApplySet) -> dict[str, str] | None:
    """The live parent's annotations; None when there is no parent."""
    from kubernetes.dynamic.exceptions import NotFoundError

    try:
        parent = cluster.resource("v1", "ConfigMap").get(name=applyset.name, namespace=applyset.namespace)
    except NotFoundError:
        return None
    annotations: dict[str, str] = parent.to_dict()["metadata"].get("annotations") or {}
    return annotations


def recorded_group_kinds(cluster: Cluster, applyset: ApplySet) -> set[str]:
    annotations = _parent_annotations(cluster, applyset) or {}
    return {k for k in annotations.get(KINDS_ANNOTATION, "").split(",") if k}


def other_project(cluster: Cluster, applyset: ApplySet) -> str | None:
    """The project the live parent says applies its members, when that is another one (a
    parent written before parents named their project belongs to whoever applies next)."""
    recorded = (_parent_annotations(cluster, applyset) or {}).get(PROJECT_ANNOTATION)
    return recorded if recorded not in (None, applyset.project) else None


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
        if group_kind.partition(".")[0] not in MEMBER_KINDS:
            continue  # a parent edited by hand: never list (so never prune) what we do not render
        resource = _resource_for(cluster, group_kind)
        if resource is None or not resource.namespaced:
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
