"""The Flux Kustomization of one environment."""

from __future__ import annotations

from typing import Any

from compiler.spec.project import Project


def flux_kustomization(project: Project, environment: str) -> dict[str, Any]:
    """One Flux Kustomization per environment: it applies generated/<env>, pruning what left it."""
    gitops = project.gitops
    base = gitops.path
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {
            "name": f"{project.metadata.name}-{environment}",
            "namespace": gitops.fluxNamespace,
            "labels": {
                "app.kubernetes.io/managed-by": "modelops",
                "app.kubernetes.io/part-of": project.metadata.name,
            },
        },
        "spec": {
            "interval": "5m",
            "path": "./" + "/".join(p for p in (base, environment) if p),
            "prune": True,
            "wait": True,
            "timeout": "5m",
            "sourceRef": {"kind": "GitRepository", "name": gitops.fluxSource},
        },
    }
