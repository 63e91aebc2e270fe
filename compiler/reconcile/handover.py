"""Handing a Deployment's replica count over to the HorizontalPodAutoscaler a spec just gained.

Without autoscaling modelops sets `spec.replicas`; with it the manifest leaves the field to
the HPA. Server-side apply removes a field that its last owner stops applying, so the API
server would default the count to 1 until the HPA acted: production down to one pod. As
Kubernetes documents for this move, the current count is first applied by a manager of its
own (HANDOVER_MANAGER), which keeps the field when modelops lets go; the HPA's next change of
the count takes it from there.
"""

from __future__ import annotations

from typing import Any

from compiler.reconcile.objects import Desired

HANDOVER_MANAGER = "modelops-handover"


def replicas_to_hand_over(desired: Desired, live: dict[str, Any] | None, manager: str) -> int | None:
    """The live replica count when `desired` (a Deployment) no longer sets it and `manager`
    applied it last; None when there is nothing to hand over."""
    if desired.ref.kind != "Deployment" or live is None or "replicas" in desired.body.get("spec", {}):
        return None
    replicas = (live.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int):
        return None
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        fields = (entry.get("fieldsV1") or {}).get("f:spec") or {}
        if entry.get("manager") == manager and entry.get("operation") == "Apply" and "f:replicas" in fields:
            return replicas
    return None


def handover_body(desired: Desired, replicas: int) -> dict[str, Any]:
    """What HANDOVER_MANAGER applies: the count alone."""
    metadata = desired.body["metadata"]
    return {
        "apiVersion": desired.api_version,
        "kind": desired.ref.kind,
        "metadata": {"name": metadata["name"], "namespace": metadata["namespace"]},
        "spec": {"replicas": replicas},
    }
