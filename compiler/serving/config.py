"""The runtime's configuration schema: what the compiled ConfigMap carries and `serve` reads.

Both sides import this module (the compiler writes it, the runtime reads it), so it imports
nothing but pydantic. The Deployment's config checksum is a hash of this document, so it
holds only what the runtime reads (plus the environment and namespace, which name the pod's
directory and never change for it): a field the runtime ignores, such as an alert threshold,
would restart every pod whenever it is edited.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

CONFIG_KEY = "runtime.json"
CONFIG_DIR = "/etc/modelops"
FEEDBACK_MAX_ENTRIES = 100_000
FEEDBACK_TTL_SECONDS = 86_400.0
MAX_ROWS = 10_000
# The runtime reads at most 4 bodies at once and parses one at a time, which can take ~5
# bytes per body byte (a non-ASCII string); with values counted before parsing, a request's
# peak is about 12 body limits, so a limit of 1/64 of the pod's memory keeps it under a fifth.
MEMORY_PER_BODY_BYTE = 64
DEFAULT_MAX_BODY_BYTES = 16 * 2**20  # what a 1 GiB pod gets; for configs that do not say
# The shadow's difference histogram, in multiples of the tolerance: resolution around the
# line between agree and disagree, whatever the unit of the target.
DIFFERENCE_MULTIPLES = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
DIFFERENCE_BUCKETS_AT_ZERO = (0.0, 0.001, 0.01, 0.1, 1.0, 10.0, 100.0)  # a tolerance of 0: no unit


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
    bodySeconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Time a request body may take to arrive; a slower one gets 408 and frees its share",
    )


class RuntimeMetrics(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    latencyBuckets: list[float]  # the SLO's latency threshold is one of them


class RuntimeFeatureBaseline(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    edges: list[float] = Field(default_factory=list, description="Inner edges of a numeric baseline")
    proportions: list[float]
    categories: list[float] | None = Field(
        default=None, description="Sorted values of a categorical baseline; one more bin for the others"
    )


class RuntimeDrift(BaseModel):
    """The bins the runtime counts values in; Prometheus computes PSI from the counts."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    # Configs compiled before drift moved to Prometheus carry it; a new image must still read them.
    windowSize: int | None = Field(default=None, description="Ignored (the runtime no longer computes PSI)")
    baseline: dict[str, RuntimeFeatureBaseline]
    predictions: RuntimeFeatureBaseline | None = None


class RuntimeFeedback(BaseModel):
    """How long and how many predictions wait for their true label (`POST .../feedback`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    maxEntries: int = Field(
        default=FEEDBACK_MAX_ENTRIES, ge=1, le=10_000_000, description="Predictions held at most"
    )
    ttlSeconds: float = Field(
        default=FEEDBACK_TTL_SECONDS, gt=0, description="How long a prediction waits for its label"
    )


class RuntimeShadow(BaseModel):
    """The candidate scored off the response path (rollout.strategy: shadow); never answers."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    version: str
    uri: str
    sha256: str
    queueSize: int = Field(default=256, ge=1, le=100_000, description="Requests waiting to be shadowed")
    tolerance: float | None = Field(
        default=None, ge=0, description="Regressors: an absolute difference up to this agrees"
    )
    differenceBuckets: list[float] = Field(
        default_factory=list, description="Regressors: histogram buckets; the tolerance is one of them"
    )


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
    feedback: RuntimeFeedback = Field(default_factory=RuntimeFeedback)
    shadow: RuntimeShadow | None = None

    @model_validator(mode="after")
    def _regressor_shadow_has_tolerance(self) -> Self:
        if self.shadow is not None and self.model.task == "regression" and self.shadow.tolerance is None:
            raise ValueError(
                "shadow.tolerance is required for a regressor (an absolute difference up to it agrees)"
            )
        return self

    @model_serializer(mode="wrap")
    def _without_absent_shadow(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """No `shadow` key unless there is a shadow: configs (and the pods' checksums) of models
        without one keep the bytes they had before shadows existed."""
        data: dict[str, Any] = handler(self)
        if self.shadow is None:
            data.pop("shadow", None)
        return data


def difference_buckets(tolerance: float) -> list[float]:
    """The shadow difference histogram's bucket bounds, always including the tolerance exactly,
    so the share of rows within it is read off one bucket (as the latency SLO's threshold is)."""
    if tolerance <= 0:
        return list(DIFFERENCE_BUCKETS_AT_ZERO)
    scaled = {round(tolerance * m, 6) for m in DIFFERENCE_MULTIPLES} - {0.0}
    return sorted(scaled | {tolerance})


def max_body_bytes(memory_limit_bytes: int) -> int:
    """The body limit for a pod with this memory limit (see MEMORY_PER_BODY_BYTE)."""
    return max(memory_limit_bytes // MEMORY_PER_BODY_BYTE, 1024)
