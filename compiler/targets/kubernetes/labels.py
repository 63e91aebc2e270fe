"""Labels and annotations shared by every object of a model."""

from __future__ import annotations

import re
from functools import lru_cache

from compiler.resolve.resolved import ResolvedModel
from compiler.stamp import Stamp

MANAGED_BY = "modelops"
GROUP = "modelops.dev"
SOURCE_ANNOTATION = f"{GROUP}/source"
COMMIT_ANNOTATION = f"{GROUP}/commit"
CONFIG_CHECKSUM_ANNOTATION = f"{GROUP}/config-checksum"
_NOT_IN_LABEL_VALUE = re.compile(r"[^A-Za-z0-9_.-]")


@lru_cache(maxsize=1024)
def label_value(text: str) -> str:
    """A valid label value from free text (a version's '+build' is not allowed in labels).
    Remembered: each of a model's objects labels its version."""
    cleaned = _NOT_IN_LABEL_VALUE.sub("_", text)[:63]
    return cleaned.strip("_.-")


def selector_labels(model: ResolvedModel) -> dict[str, str]:
    """Labels that never change for the life of a model: Deployment selectors are immutable."""
    return {
        "app.kubernetes.io/name": model.name,
        "app.kubernetes.io/instance": f"{model.name}-{model.environment}"[:63].rstrip("-"),
    }


def common_labels(model: ResolvedModel, component: str = "model-server") -> dict[str, str]:
    return {
        **model.labels,
        **selector_labels(model),
        "app.kubernetes.io/version": label_value(model.model.version.text),
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": model.project,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        f"{GROUP}/team": model.team,
        f"{GROUP}/environment": model.environment,
    }


def common_annotations(model: ResolvedModel, stamp: Stamp) -> dict[str, str]:
    annotations = {SOURCE_ANNOTATION: model.source}
    if stamp.commit is not None:
        annotations[COMMIT_ANNOTATION] = stamp.commit
    return annotations


def object_metadata(model: ResolvedModel, name: str, stamp: Stamp) -> dict[str, object]:
    """metadata of an object that belongs to one model in one environment."""
    return {
        "name": name,
        "namespace": model.namespace,
        "labels": common_labels(model),
        "annotations": common_annotations(model, stamp),
    }
