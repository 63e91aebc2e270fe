"""ResolvedModel -> Kubernetes objects for the builtin runtime. Pure: no I/O, no clock.

Hardened by default: the pod passes the Pod Security Standards `restricted` profile and
adds what the best public charts do (read-only root filesystem, no service account token,
topology spread, a config checksum that rolls pods when the configuration changes).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from compiler.resolve.resolved import ResolvedModel
from compiler.serialize import to_json
from compiler.serving.config import CONFIG_DIR, CONFIG_KEY
from compiler.spec.types import Quantity
from compiler.stamp import Stamp
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
DEFAULT_REQUESTS = {"cpu": "100m", "memory": "256Mi"}


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


def service_account(model: ResolvedModel, stamp: Stamp) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": object_metadata(model, model.name, stamp),
        "automountServiceAccountToken": False,
    }


def config_map(model: ResolvedModel, stamp: Stamp) -> Obj:
    memory_limit = int(Quantity.parse(_resources(model)["limits"]["memory"]).value)
    config = to_json(runtime_config_for(model, memory_limit).model_dump(mode="json")).decode()
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_metadata(model, f"{model.name}-config", stamp),
        "data": {CONFIG_KEY: config},
    }


def _resources(model: ResolvedModel) -> Obj:
    spec = model.serving.resources
    requests: dict[str, str] = dict(DEFAULT_REQUESTS)
    limits: dict[str, str] = {}
    for name, quantity in (
        ("cpu", spec.requests.cpu),
        ("memory", spec.requests.memory),
        ("ephemeral-storage", spec.requests.ephemeral_storage),
    ):
        if quantity is not None:
            requests[name] = quantity.text
    for name, limit in (
        ("cpu", spec.limits.cpu),
        ("memory", spec.limits.memory),
        ("ephemeral-storage", spec.limits.ephemeral_storage),
    ):
        if limit is not None:
            limits[name] = limit.text
    # Without a memory limit one leaking pod can starve its node: default it to the request.
    limits.setdefault("memory", requests["memory"])
    if Quantity.parse(limits["memory"]) < Quantity.parse(requests["memory"]):
        requests["memory"] = limits["memory"]
    return {"requests": requests, "limits": limits}


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


def deployment(model: ResolvedModel, stamp: Stamp, config_checksum: str) -> Obj:
    serving = model.serving
    volumes: list[Obj] = [
        {"name": "config", "configMap": {"name": f"{model.name}-config"}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        {"name": "model-cache", "emptyDir": {"sizeLimit": "2Gi"}},
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
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_metadata(model, model.name, stamp),
        "spec": spec,
    }


def service(model: ResolvedModel, stamp: Stamp) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_metadata(model, model.name, stamp),
        "spec": {
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
        },
    }


def horizontal_pod_autoscaler(model: ResolvedModel, stamp: Stamp) -> Obj | None:
    autoscaling = model.serving.autoscaling
    if autoscaling is None:
        return None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": object_metadata(model, model.name, stamp),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": model.name},
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
        },
    }


def pod_disruption_budget(model: ResolvedModel, stamp: Stamp) -> Obj | None:
    if model.serving.replicas.min < 2:
        return None  # a PDB on a single replica would block node drains forever
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": object_metadata(model, model.name, stamp),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(model)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def network_policy(model: ResolvedModel, stamp: Stamp) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": object_metadata(model, model.name, stamp),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(model)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "ports": [
                        {"port": model.serving.port, "protocol": "TCP"},
                        {"port": model.serving.metricsPort, "protocol": "TCP"},
                    ]
                }
            ],
        },
    }


def service_monitor(model: ResolvedModel, stamp: Stamp) -> Obj:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": object_metadata(model, model.name, stamp),
        "spec": {
            "selector": {"matchLabels": selector_labels(model)},
            "namespaceSelector": {"matchNames": [model.namespace]},
            "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}],
        },
    }


def render_model(model: ResolvedModel, stamp: Stamp) -> list[RenderedObject]:
    """Every Kubernetes object of one model in one environment, with its file name."""
    config = config_map(model, stamp)
    # The runtime config holds only what the runtime reads, so only a change to that rolls the pods.
    checksum = hashlib.sha256(config["data"][CONFIG_KEY].encode()).hexdigest()
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
