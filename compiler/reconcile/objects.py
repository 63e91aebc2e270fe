"""The objects one environment wants, read from the compiled output, in apply order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from compiler.bundle.layout import KUSTOMIZATION, MANIFEST, is_object

# Namespaces and CRDs first, then what workloads refer to, then workloads, then monitoring.
STAGES: tuple[frozenset[str], ...] = (
    frozenset({"Namespace", "CustomResourceDefinition"}),
    frozenset({"ServiceAccount", "ConfigMap", "Secret", "Service"}),
    frozenset({"Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"}),
    frozenset({"ServiceMonitor", "PrometheusRule"}),
)


@dataclass(frozen=True)
class Desired:
    body: dict[str, Any]
    path: str

    @property
    def api_version(self) -> str:
        return str(self.body["apiVersion"])

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def namespace(self) -> str | None:
        namespace = self.body["metadata"].get("namespace")
        return str(namespace) if namespace else None

    @property
    def model(self) -> str:
        return str(self.body["metadata"].get("labels", {}).get("app.kubernetes.io/name", "(environment)"))

    @property
    def ref(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{where}{self.name}"

    @property
    def group_kind(self) -> str:
        group = self.api_version.rsplit("/", 1)[0] if "/" in self.api_version else ""
        return f"{self.kind}.{group}" if group else self.kind


def stage_of(kind: str) -> int:
    for index, kinds in enumerate(STAGES):
        if kind in kinds:
            return index
    return len(STAGES) - 1


def desired_objects(files: dict[str, bytes], environment: str) -> list[Desired]:
    """Every Kubernetes object of `environment` in the compiled files, in apply order."""
    found: list[Desired] = []
    for path, content in sorted(files.items()):
        name = path.rsplit("/", 1)[-1]
        if not path.startswith(f"{environment}/") or path == MANIFEST or name == KUSTOMIZATION:
            continue
        if not name.endswith(".yaml") or not is_object(name):
            continue
        found.append(Desired(yaml.safe_load(content), path))
    return sorted(found, key=lambda d: (stage_of(d.kind), d.path))
