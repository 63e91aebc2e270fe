"""ConfigMaps that the Grafana sidecar (label grafana_dashboard: "1") turns into dashboards."""

from __future__ import annotations

from typing import Any

from compiler.resolve.resolved import ResolvedModel
from compiler.stamp import Stamp
from compiler.targets.kubernetes.labels import MANAGED_BY, object_metadata

SIDECAR_LABEL = "grafana_dashboard"
FOLDER_ANNOTATION = "grafana_folder"


def dashboard_config_map(model: ResolvedModel, dashboard_json: str, uid: str, stamp: Stamp) -> dict[str, Any]:
    metadata: dict[str, Any] = object_metadata(model, f"{model.name}-dashboard", stamp)
    metadata["labels"] = {**metadata["labels"], SIDECAR_LABEL: "1"}
    metadata["annotations"] = {**metadata["annotations"], FOLDER_ANNOTATION: f"modelops/{model.environment}"}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "data": {f"{uid}.json": dashboard_json},
    }


def overview_config_map(
    environment: str, namespace: str, project: str, dashboard_json: str, uid: str
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "modelops-overview-dashboard",
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/name": "modelops-overview",
                "app.kubernetes.io/component": "dashboard",
                "app.kubernetes.io/part-of": project,
                "app.kubernetes.io/managed-by": MANAGED_BY,
                "modelops.dev/environment": environment,
                SIDECAR_LABEL: "1",
            },
            "annotations": {FOLDER_ANNOTATION: f"modelops/{environment}"},
        },
        "data": {f"{uid}.json": dashboard_json},
    }
