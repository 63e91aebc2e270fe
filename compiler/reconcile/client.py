"""The official kubernetes client, configured from a kubeconfig and context; lazy to import."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compiler.errors import UsageError


@dataclass
class Cluster:
    api: Any  # kubernetes.client.ApiClient
    dynamic: Any  # kubernetes.dynamic.DynamicClient

    def resource(self, api_version: str, kind: str) -> Any:
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        try:
            return self.dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            raise UsageError(
                f"the cluster does not serve {kind} ({api_version}); install its CRD first"
            ) from None


def connect(context: str | None, kubeconfig: str | None = None) -> Cluster:
    from kubernetes import config, dynamic
    from kubernetes.config.config_exception import ConfigException

    try:
        api = config.new_client_from_config(config_file=kubeconfig, context=context)
    except (ConfigException, OSError, TypeError) as err:
        where = kubeconfig or "$KUBECONFIG or ~/.kube/config"
        raise UsageError(f"cannot load kubeconfig {where} (context {context or 'current'}): {err}") from err
    try:
        return Cluster(api, dynamic.DynamicClient(api))
    except Exception as err:  # urllib3 connection errors and friends
        raise UsageError(f"cannot reach the API server: {_reason(err)}") from err


def _reason(err: Exception) -> str:
    text = str(err)
    return text.splitlines()[0][:300] if text else type(err).__name__
