"""Checks against a real kube-apiserver that several test files share."""

from __future__ import annotations

import contextlib
from typing import Any


def strict_dry_run(client: Any, obj: dict[str, Any]) -> None:
    """Create with dryRun=All and strict field validation: checked by the API server, stored nowhere."""
    from kubernetes.client.exceptions import ApiException

    namespace = obj["metadata"]["namespace"]
    with contextlib.suppress(ApiException):  # 409: there already
        client.resources.get(api_version="v1", kind="Namespace").create(
            body={"metadata": {"name": namespace}}
        )
    resource = client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    resource.create(
        body=obj, namespace=namespace, dry_run="All", query_params=[("fieldValidation", "Strict")]
    )
