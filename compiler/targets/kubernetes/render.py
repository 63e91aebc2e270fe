"""ResolvedModel -> Kubernetes objects for the builtin runtime. Pure: no I/O, no clock.

Hardened by default: the pod passes the Pod Security Standards `restricted` profile and
adds what the best public charts do (read-only root filesystem, no service account token,
topology spread, a config checksum that rolls pods when the configuration changes).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any
from urllib.parse import urlsplit

from compiler.resolve.resolved import ResolvedModel
from compiler.serialize import to_json
from compiler.serving.config import CONFIG_DIR, CONFIG_KEY
from compiler.spec.types import Quantity
from compiler.stamp import Stamp
from compiler.targets.kubernetes import rollout as canary
from compiler.targets.kubernetes.labels import (
    CONFIG_CHECKSUM_ANNOTATION,
    common_labels,
    object_metadata,
    selector_labels,
)
from compiler.targets.kubernetes.runtime_config import runtime_config_for

Obj = dict[str, Any]

RUNTIME_UID = 10001
HEALTH_LIVE = "/v2/health/live"
HEALTH_READY = "/v2/health/ready"
MODEL_CACHE_DIR = "/var/lib/modelops"
DEFAULT_REQUESTS = {"cpu": Quantity.parse("100m"), "memory": Quantity.parse("256Mi")}
# Container logs count against the pod's ephemeral storage: the kubelet keeps 5 files of 10Mi
# by default. The root filesystem is read-only, so the container writes nothing else.
LOG_ALLOWANCE = Quantity.parse("64Mi")


@dataclass(frozen=True)
class RenderedObject:
    """One object and the file name it is written to inside its model's directory."""

    filename: str
    body: Obj


def namespace_object(name: str, project: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/managed-by": "modelops",
                "app.kubernetes.io/part-of": project,
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
                "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/audit": "restricted",
            },
        },
    }


def _model_object(
    model: ResolvedModel, stamp: Stamp, api_version: str, kind: str, body: Obj, name: str | None = None
) -> Obj:
    """An object of the model: its type, its metadata (name, labels, stamp), then its body."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": object_metadata(model, model.name if name is None else name, stamp),
        **body,
    }


def service_account(model: ResolvedModel, stamp: Stamp) -> Obj:
    return _model_object(model, stamp, "v1", "ServiceAccount", {"automountServiceAccountToken": False})


def config_map(model: ResolvedModel, stamp: Stamp) -> Obj:
    memory_limit = int(_resource_quantities(model)["limits"]["memory"].value)
    config = to_json(runtime_config_for(model, memory_limit).model_dump(mode="json")).decode()
    return _model_object(
        model, stamp, "v1", "ConfigMap", {"data": {CONFIG_KEY: config}}, name=f"{model.name}-config"
    )


def _checksum(config: Obj) -> str:
    return hashlib.sha256(config["data"][CONFIG_KEY].encode()).hexdigest()


def versioned_config_map(model: ResolvedModel, stamp: Stamp) -> Obj:
    """The ConfigMap under a name of its content. A canary's stable and canary pods run side by
    side, each reading its own version's configuration: a stable pod started mid-rollout (a
    restart, a scale-up, the scale-back of an abort) must not read the candidate's."""
    config = config_map(model, stamp)
    config["metadata"]["name"] = f"{model.name}-config-{_checksum(config)[:10]}"
    return config


def _resources(model: ResolvedModel) -> Obj:
    return {
        kind: {name: quantity.text for name, quantity in quantities.items()}
        for kind, quantities in _resource_quantities(model).items()
    }


def _resource_quantities(model: ResolvedModel) -> dict[str, dict[str, Quantity]]:
    """The container's requests and limits, compared as quantities and written as the spec
    spells them (a default, in its own spelling)."""
    spec = model.serving.resources
    requests = dict(DEFAULT_REQUESTS)
    limits: dict[str, Quantity] = {}
    for name, request, limit in (
        ("cpu", spec.requests.cpu, spec.limits.cpu),
        ("memory", spec.requests.memory, spec.limits.memory),
        ("ephemeral-storage", spec.requests.ephemeral_storage, spec.limits.ephemeral_storage),
    ):
        if request is not None:
            requests[name] = request
        if limit is not None:
            limits[name] = limit
    # Without a memory limit one leaking pod can starve its node: default it to the request.
    limits.setdefault("memory", requests["memory"])
    # The scratch volumes live on the node's disk: reserve what they may hold, and cap it, so
    # the scheduler never overcommits a node into disk-pressure evictions.
    scratch = Quantity.parse(ephemeral_storage(model))
    requests.setdefault("ephemeral-storage", scratch)
    limits.setdefault("ephemeral-storage", max(requests["ephemeral-storage"], scratch))
    for name in ("memory", "ephemeral-storage"):
        if limits[name] < requests[name]:
            requests[name] = limits[name]
    return {"requests": requests, "limits": limits}


def ephemeral_storage(model: ResolvedModel) -> str:
    """What the pod may write to the node's disk: both emptyDir volumes at their size limits
    plus the container's logs."""
    storage = model.serving.storage
    return quantity_text(storage.modelCache.value + storage.tmp.value + LOG_ALLOWANCE.value)


def quantity_text(amount: Decimal) -> str:
    """A byte count as a Kubernetes quantity, in the largest binary unit that divides it."""
    for suffix, size in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if amount % size == 0:
            return f"{int(amount // size)}{suffix}"
    return str(int(amount.to_integral_value(rounding=ROUND_CEILING)))


def _container_security() -> Obj:
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": RUNTIME_UID,
        "runAsGroup": RUNTIME_UID,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _probe(path: str, period: int, failures: int) -> Obj:
    return {
        "httpGet": {"path": path, "port": "http", "scheme": "HTTP"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
        "successThreshold": 1,
    }


def _spread(model: ResolvedModel) -> list[Obj]:
    selector = {"matchLabels": selector_labels(model)}
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": selector,
            "matchLabelKeys": ["pod-template-hash"],
        }
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    ]


def deployment(
    model: ResolvedModel, stamp: Stamp, config_checksum: str, config_name: str | None = None
) -> Obj:
    serving = model.serving
    volumes: list[Obj] = [
        {"name": "config", "configMap": {"name": config_name or f"{model.name}-config"}},
        {"name": "tmp", "emptyDir": {"sizeLimit": serving.storage.tmp.text}},
        {"name": "model-cache", "emptyDir": {"sizeLimit": serving.storage.modelCache.text}},
    ]
    mounts: list[Obj] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "model-cache", "mountPath": MODEL_CACHE_DIR},
    ]
    uri = model.model.uri
    if uri.scheme == "pvc":
        claim = uri.text.removeprefix("pvc://").split("/", 1)[0]
        volumes.append({"name": "model-pvc", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}})
        mounts.append({"name": "model-pvc", "mountPath": f"/mnt/pvc/{claim}", "readOnly": True})
    container: Obj = {
        "name": "runtime",
        "image": model.image,
        "imagePullPolicy": "IfNotPresent",
        "args": [
            "serve",
            "--config",
            f"{CONFIG_DIR}/{CONFIG_KEY}",
            "--host",
            "0.0.0.0",
            "--port",
            str(serving.port),
        ],
        "env": [
            {"name": "TMPDIR", "value": "/tmp"},
        ],
        "ports": [
            {"name": "http", "containerPort": serving.port, "protocol": "TCP"},
            {"name": "metrics", "containerPort": serving.metricsPort, "protocol": "TCP"},
        ],
        # Loading a model can take a while: the startup probe holds liveness off until then.
        "startupProbe": _probe(HEALTH_LIVE, period=5, failures=60),
        "livenessProbe": _probe(HEALTH_LIVE, period=10, failures=3),
        "readinessProbe": _probe(HEALTH_READY, period=5, failures=3),
        # Give endpoints time to drop the pod before the runtime stops accepting requests.
        "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
        "resources": _resources(model),
        "securityContext": _container_security(),
        "volumeMounts": mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    pod_labels = common_labels(model)
    spec: Obj = {
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": selector_labels(model)},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
        "template": {
            "metadata": {
                "labels": pod_labels,
                "annotations": {CONFIG_CHECKSUM_ANNOTATION: f"sha256:{config_checksum}"},
            },
            "spec": {
                "serviceAccountName": model.name,
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "terminationGracePeriodSeconds": 30,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": RUNTIME_UID,
                    "runAsGroup": RUNTIME_UID,
                    "fsGroup": RUNTIME_UID,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [container],
                "volumes": volumes,
            },
        },
    }
    if serving.autoscaling is None:
        spec["replicas"] = serving.replicas.min  # with an HPA, the HPA owns the replica count
    if serving.replicas.min >= 2:
        spec["template"]["spec"]["topologySpreadConstraints"] = _spread(model)
    return _model_object(model, stamp, "apps/v1", "Deployment", {"spec": spec})


def service(model: ResolvedModel, stamp: Stamp) -> Obj:
    spec: Obj = {
        "type": "ClusterIP",
        "selector": selector_labels(model),
        "ports": [
            {"name": "http", "port": model.serving.port, "targetPort": "http", "protocol": "TCP"},
            {
                "name": "metrics",
                "port": model.serving.metricsPort,
                "targetPort": "metrics",
                "protocol": "TCP",
            },
        ],
    }
    return _model_object(model, stamp, "v1", "Service", {"spec": spec})


def horizontal_pod_autoscaler(model: ResolvedModel, stamp: Stamp) -> Obj | None:
    autoscaling = model.serving.autoscaling
    if autoscaling is None:
        return None
    target = (
        {"apiVersion": canary.API_VERSION, "kind": "Rollout"}
        if canary.is_canary(model)
        else {"apiVersion": "apps/v1", "kind": "Deployment"}
    )
    spec: Obj = {
        "scaleTargetRef": {**target, "name": model.name},
        "minReplicas": model.serving.replicas.min,
        "maxReplicas": model.serving.replicas.max,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": autoscaling.cpu},
                },
            }
        ],
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
    }
    return _model_object(model, stamp, "autoscaling/v2", "HorizontalPodAutoscaler", {"spec": spec})


def pod_disruption_budget(model: ResolvedModel, stamp: Stamp) -> Obj:
    """At most one pod down by voluntary disruption; with one replica, a drain may still evict it."""
    spec: Obj = {
        "maxUnavailable": 1,
        "selector": {"matchLabels": selector_labels(model)},
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }
    return _model_object(model, stamp, "policy/v1", "PodDisruptionBudget", {"spec": spec})


NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set by the API server on every namespace
DNS_PORT = 53
HTTPS_PORT = 443


def _namespace_peer(name: str) -> Obj:
    return {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: name}}}


def _tcp(port: int) -> Obj:
    return {"port": port, "protocol": "TCP"}


def artifact_fetch_port(model: ResolvedModel) -> int | None:
    """The TCP port fetching the artifact connects to: 443 for buckets and https:// (or the
    URI's own port); None when the artifact is a mounted claim or ships in the image."""
    uri = model.model.uri
    if uri.scheme in ("s3", "gs"):
        return HTTPS_PORT
    if uri.scheme == "https":
        return urlsplit(uri.text).port or HTTPS_PORT
    return None


def _ingress(model: ResolvedModel) -> list[Obj]:
    network = model.serving.network
    serving_from: list[Obj] = [{"podSelector": {}}] if network.sameNamespace else []
    others = sorted(set(network.ingressNamespaces) - ({model.namespace} if network.sameNamespace else set()))
    serving_from += [_namespace_peer(name) for name in others]
    metrics_from = [_namespace_peer(name) for name in sorted(set(network.monitoringNamespaces))]
    rules = []
    for peers, port in ((serving_from, model.serving.port), (metrics_from, model.serving.metricsPort)):
        if peers:  # a rule without `from` would admit every source: no peers, no rule
            rules.append({"from": peers, "ports": [_tcp(port)]})
    return rules


def _egress(model: ResolvedModel) -> list[Obj]:
    network = model.serving.network
    rules: list[Obj] = []
    if network.dns:
        rules.append(
            {
                "to": [_namespace_peer(network.dnsNamespace)],
                "ports": [{"port": DNS_PORT, "protocol": "UDP"}, _tcp(DNS_PORT)],
            }
        )
    port = artifact_fetch_port(model) if network.artifactEgress else None
    if port is not None:
        # Buckets and HTTPS hosts have no fixed addresses (and may sit behind a private endpoint):
        # the port is the bound.
        rules.append({"ports": [_tcp(port)]})
    for extra in network.egress:
        peer = (
            _namespace_peer(extra.namespace)
            if extra.namespace is not None
            else {"ipBlock": {"cidr": extra.cidr}}
        )
        rules.append({"to": [peer], "ports": [{"port": p, "protocol": extra.protocol} for p in extra.ports]})
    return rules


def network_policy(model: ResolvedModel, stamp: Stamp) -> Obj:
    """Default deny both ways, then: the serving port from the model's namespace and the named
    ingress namespaces, the metrics port from the monitoring namespaces, egress to DNS and to
    what the artifact fetch needs."""
    spec: Obj = {
        "podSelector": {"matchLabels": selector_labels(model)},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": _ingress(model),
        "egress": _egress(model),
    }
    return _model_object(model, stamp, "networking.k8s.io/v1", "NetworkPolicy", {"spec": spec})


def service_monitor(model: ResolvedModel, stamp: Stamp) -> Obj:
    spec: Obj = {
        "selector": {"matchLabels": selector_labels(model)},
        "namespaceSelector": {"matchNames": [model.namespace]},
        "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}],
    }
    return _model_object(model, stamp, "monitoring.coreos.com/v1", "ServiceMonitor", {"spec": spec})


def render_model(model: ResolvedModel, stamp: Stamp) -> list[RenderedObject]:
    """Every Kubernetes object of one model in one environment, with its file name."""
    if canary.is_canary(model):
        return _render_canary(model, stamp)
    config = config_map(model, stamp)
    # The runtime config holds only what the runtime reads, so only a change to that rolls the pods.
    checksum = _checksum(config)
    candidates: list[tuple[str, Obj | None]] = [
        ("serviceaccount.yaml", service_account(model, stamp)),
        ("configmap.yaml", config),
        ("deployment.yaml", deployment(model, stamp, checksum)),
        ("service.yaml", service(model, stamp)),
        ("hpa.yaml", horizontal_pod_autoscaler(model, stamp)),
        ("pdb.yaml", pod_disruption_budget(model, stamp)),
        ("networkpolicy.yaml", network_policy(model, stamp)),
        ("servicemonitor.yaml", service_monitor(model, stamp)),
    ]
    return [RenderedObject(name, body) for name, body in candidates if body is not None]


def _render_canary(model: ResolvedModel, stamp: Stamp) -> list[RenderedObject]:
    """The objects of a canary: a Rollout in place of the Deployment, the stable and canary
    Services beside the model's, and the stable's configuration beside the candidate's."""
    config = versioned_config_map(model, stamp)
    checksum = _checksum(config)
    stable, stable_record = canary.stable_view(model)
    stable_config = versioned_config_map(
        model.model_copy(update={"model": stable, "evaluated": stable_record}), stamp
    )
    workload = deployment(model, stamp, checksum, config["metadata"]["name"])
    candidates: list[tuple[str, Obj | None]] = [
        ("serviceaccount.yaml", service_account(model, stamp)),
        ("configmap.yaml", config),
        (
            "configmap-stable.yaml",
            stable_config if stable_config["metadata"]["name"] != config["metadata"]["name"] else None,
        ),
        ("rollout.yaml", canary.rollout(model, workload)),
        ("service.yaml", service(model, stamp)),
        ("service-stable.yaml", canary.role_service(model, service(model, stamp), canary.STABLE)),
        ("service-canary.yaml", canary.role_service(model, service(model, stamp), canary.CANARY)),
        ("hpa.yaml", horizontal_pod_autoscaler(model, stamp)),
        ("pdb.yaml", pod_disruption_budget(model, stamp)),
        ("networkpolicy.yaml", network_policy(model, stamp)),
        ("servicemonitor.yaml", service_monitor(model, stamp)),
    ]
    return [RenderedObject(name, body) for name, body in candidates if body is not None]
