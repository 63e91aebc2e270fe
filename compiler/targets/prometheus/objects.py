"""The PrometheusRule object that Prometheus Operator loads (same groups as rules.yaml)."""

from __future__ import annotations

from typing import Any

from compiler.resolve.resolved import ResolvedModel
from compiler.stamp import Stamp
from compiler.targets.kubernetes.labels import object_metadata
from compiler.targets.prometheus.rules import RuleGroup


def prometheus_rule(model: ResolvedModel, groups: list[RuleGroup], stamp: Stamp) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": object_metadata(model, model.name, stamp),
        "spec": {"groups": [group.to_dict() for group in groups]},
    }
