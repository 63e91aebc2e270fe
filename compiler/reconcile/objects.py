"""The objects one environment wants, taken from the render stage (never parsed back from files).

They are the same objects compile writes to generated/<env>/ (its kustomization's resources),
so apply sends exactly what Argo CD or Flux would sync from the tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compiler.bundle.layout import model_documents
from compiler.reconcile.order import apply_group
from compiler.resolve.resolved import ResolvedModel
from compiler.serialize import to_json
from compiler.spec.project import Project
from compiler.stamp import Stamp
from compiler.targets.grafana.dashboards import overview_dashboard
from compiler.targets.grafana.objects import overview_config_map
from compiler.targets.kubernetes import namespace_object
from compiler.targets.links import overview_dashboard_uid

MODEL_LABEL = "app.kubernetes.io/name"
NO_MODEL = "(environment)"  # the group of objects that belong to no model (the namespace)


@dataclass(frozen=True)
class ObjectRef:
    """One object's identity in the cluster: group, kind, namespace and name."""

    group: str
    kind: str
    namespace: str | None
    name: str

    @classmethod
    def of(cls, body: dict[str, Any]) -> ObjectRef:
        api_version = str(body["apiVersion"])
        group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
        metadata = body["metadata"]
        return cls(group, str(body["kind"]), metadata.get("namespace") or None, str(metadata["name"]))

    @property
    def group_kind(self) -> str:
        """As the ApplySet annotations spell it: `Kind.group`, or `Kind` for the core group."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{where}{self.name}"


def model_of(body: dict[str, Any]) -> str:
    """The model an object belongs to, from its name label (for the per-model summary)."""
    return str((body["metadata"].get("labels") or {}).get(MODEL_LABEL, NO_MODEL))


@dataclass(frozen=True)
class Desired:
    """An object as the render stage made it."""

    body: dict[str, Any]

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef.of(self.body)

    @property
    def api_version(self) -> str:
        return str(self.body["apiVersion"])

    @property
    def model(self) -> str:
        return model_of(self.body)


def apply_order(objects: list[Desired]) -> list[Desired]:
    """Sorted by APPLY_ORDER group, then by namespace, name and kind: a model's objects together."""

    def key(desired: Desired) -> tuple[int, str, str, str, str]:
        ref = desired.ref
        return (apply_group(ref.kind), ref.namespace or "", ref.name, ref.kind, ref.group)

    return sorted(objects, key=key)


def rendered_objects(
    models: list[ResolvedModel], project: Project, stamp: Stamp, environment: str
) -> list[Desired]:
    """Every Kubernetes object of `environment`, in apply order: the models' objects, the
    namespace when the project creates it, and the overview dashboard when there are models."""
    env = project.environment(environment)
    if env is None:
        return []
    environments = tuple((e.name, e.namespace) for e in project.environments)
    chosen = [m for m in models if m.environment == environment]
    bodies = [
        document
        for model in chosen
        for _, document, is_object in model_documents((model, stamp, environments))
        if is_object
    ]
    if env.createNamespace:
        bodies.append(namespace_object(env.namespace, project.metadata.name))
    if chosen:
        dashboard = overview_dashboard(environment, env.namespace, len(chosen), list(environments))
        bodies.append(
            overview_config_map(
                environment,
                env.namespace,
                project.metadata.name,
                to_json(dashboard).decode(),
                overview_dashboard_uid(environment),
            )
        )
    return apply_order([Desired(body) for body in bodies])
