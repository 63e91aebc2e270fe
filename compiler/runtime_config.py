"""The serving runtime's configuration: what the compiled ConfigMap carries and `serve` reads.

One schema for both sides, so a file that works in the pod works on a laptop.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from compiler.metrics.contract import latency_buckets
from compiler.resolve.resolved import ResolvedModel

CONFIG_KEY = "runtime.json"
CONFIG_DIR = "/etc/modelops"
DRIFT_WINDOW = 1000
MAX_ROWS = 10_000
# The runtime reads at most 4 bodies at once and parses one at a time, which can take ~5
# bytes per body byte (a non-ASCII string); with values counted before parsing, a request's
# peak is about 12 body limits, so a limit of 1/64 of the pod's memory keeps it under a fifth.
MEMORY_PER_BODY_BYTE = 64
DEFAULT_MAX_BODY_BYTES = 16 * 2**20  # what a 1 GiB pod gets; for configs that do not say


class RuntimeFeature(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    name: str
    type: Literal["float", "int", "bool", "string"]


class RuntimeModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    name: str
    version: str
    task: Literal["classification", "regression"]
    framework: str
    uri: str
    sha256: str | None = None
    features: list[RuntimeFeature] = Field(default_factory=list)


class RuntimeServer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    port: int
    metricsPort: int
    maxBodyBytes: int = Field(
        default=DEFAULT_MAX_BODY_BYTES,
        ge=1024,
        description="Largest request body; larger ones get 413 before they are read whole",
    )
    maxRows: int = Field(default=MAX_ROWS, ge=1, description="Most rows one inference request may hold")


class RuntimeMetrics(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    latencyBuckets: list[float]
    sloLatencyThresholdSeconds: float | None = None
    driftPsiWarning: float | None = None
    driftPsiCritical: float | None = None


class RuntimeFeatureBaseline(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    edges: list[float]
    proportions: list[float]


class RuntimeDrift(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    windowSize: int = Field(default=DRIFT_WINDOW, ge=10, description="Recent inputs PSI is computed over")
    baseline: dict[str, RuntimeFeatureBaseline]


class RuntimeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    apiVersion: Literal["modelops.dev/v1alpha1"] = "modelops.dev/v1alpha1"
    kind: Literal["RuntimeConfig"] = "RuntimeConfig"
    environment: str
    namespace: str
    model: RuntimeModel
    server: RuntimeServer
    metrics: RuntimeMetrics
    drift: RuntimeDrift | None = None


def max_body_bytes(memory_limit_bytes: int) -> int:
    """The body limit for a pod with this memory limit (see MEMORY_PER_BODY_BYTE)."""
    return max(memory_limit_bytes // MEMORY_PER_BODY_BYTE, 1024)


def runtime_config_for(model: ResolvedModel, memory_limit_bytes: int) -> RuntimeConfig:
    """The runtime's configuration; `memory_limit_bytes` is the pod's memory limit."""
    slo = model.monitoring.slo
    threshold = slo.latency.threshold.seconds if slo is not None and slo.latency is not None else None
    psi = model.monitoring.drift.psi if model.monitoring.drift is not None else None
    return RuntimeConfig(
        environment=model.environment,
        namespace=model.namespace,
        model=RuntimeModel(
            name=model.name,
            version=model.model.version.text,
            task=model.model.task,
            framework=model.model.framework,
            uri=model.model.uri.text,
            sha256=model.model.sha256,
            features=[RuntimeFeature(name=f.name, type=f.type) for f in model.model.features],
        ),
        server=RuntimeServer(
            port=model.serving.port,
            metricsPort=model.serving.metricsPort,
            maxBodyBytes=max_body_bytes(memory_limit_bytes),
        ),
        metrics=RuntimeMetrics(
            latencyBuckets=list(latency_buckets(threshold)),
            sloLatencyThresholdSeconds=threshold,
            driftPsiWarning=psi.warning if psi else None,
            driftPsiCritical=psi.critical if psi else None,
        ),
        drift=_drift(model),
    )


def _drift(model: ResolvedModel) -> RuntimeDrift | None:
    """The baseline `modelops evaluate` recorded, for the features the spec declares."""
    record = model.evaluated
    names = [f.name for f in model.model.features]
    if record is None or not names or any(name not in record.baseline for name in names):
        return None
    return RuntimeDrift(
        baseline={
            name: RuntimeFeatureBaseline(
                edges=record.baseline[name].edges, proportions=record.baseline[name].proportions
            )
            for name in names
        }
    )
