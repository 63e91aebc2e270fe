"""The official kubernetes client, configured from a kubeconfig and context; lazy to import.

Every request, discovery included, has a client-side timeout: a server whose etcd is gone
answers nothing for a minute or more, and a reconcile must say so long before that.
Read timeouts are not retried, so one request never waits longer than the timeout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compiler.errors import UsageError
from compiler.reconcile.errors import ClusterFailure, Fault, PlanError, classify

DEFAULT_REQUEST_TIMEOUT = 30.0  # seconds; kube-apiserver gives up on a request after 60


@dataclass
class Cluster:
    api: Any  # kubernetes.client.ApiClient
    dynamic: Any  # kubernetes.dynamic.DynamicClient
    timeout: float  # seconds, per request

    def resource(self, api_version: str, kind: str) -> Any:
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        try:
            return self.dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            raise ClusterFailure(
                Fault.NOT_SERVED, f"the cluster does not serve {kind} ({api_version}); install its CRD first"
            ) from None


def _timed_client(configuration: Any, timeout: float) -> Any:
    """An ApiClient whose requests time out after `timeout` seconds unless a call says otherwise."""
    from kubernetes.client import ApiClient

    class TimedApiClient(ApiClient):  # type: ignore[misc]
        def request(self, *args: Any, _request_timeout: Any = None, **kwargs: Any) -> Any:
            return super().request(*args, _request_timeout=_request_timeout or (timeout, timeout), **kwargs)

    return TimedApiClient(configuration=configuration)


def connect(context: str | None, kubeconfig: str | None, timeout: float = DEFAULT_REQUEST_TIMEOUT) -> Cluster:
    """A client for the cluster of `context`; PlanError when the API server does not answer."""
    from kubernetes import client, config, dynamic
    from kubernetes.config.config_exception import ConfigException
    from urllib3 import Retry

    configuration = type.__call__(client.Configuration)  # not a copy of the process-wide default
    try:
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
    except (ConfigException, OSError, TypeError) as err:
        where = kubeconfig or "$KUBECONFIG or ~/.kube/config"
        raise UsageError(f"cannot load kubeconfig {where} (context {context or 'current'}): {err}") from err
    configuration.retries = Retry(total=0, read=False, redirect=False)
    api = _timed_client(configuration, timeout)
    try:
        return Cluster(api, dynamic.DynamicClient(api), timeout)
    except Exception as err:  # discovery: connection errors, timeouts, error answers
        raise PlanError(classify(err, timeout)) from err
