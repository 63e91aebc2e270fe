"""The order objects are applied in, as data (like Flux's ssa sort.go); prune goes in reverse.

Namespaces and CRDs first, then what workloads refer to (an Argo Rollouts AnalysisTemplate
among them: a Rollout whose template is missing is marked invalid at once), then workloads
(a Rollout is one, where a Deployment would be), then monitoring. Prune deletes a Rollout
before its AnalysisTemplate. A kind the table does not name goes with the last group.
"""

from __future__ import annotations

APPLY_ORDER: tuple[tuple[str, ...], ...] = (
    ("Namespace", "CustomResourceDefinition"),
    ("ServiceAccount", "ConfigMap", "Secret", "Service", "AnalysisTemplate"),
    ("Deployment", "Rollout", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"),
    ("ServiceMonitor", "PrometheusRule"),
)

_GROUP_OF = {kind: index for index, kinds in enumerate(APPLY_ORDER) for kind in kinds}


def apply_group(kind: str) -> int:
    """The index of `kind`'s group in APPLY_ORDER: lower groups are applied first."""
    return _GROUP_OF.get(kind, len(APPLY_ORDER) - 1)
