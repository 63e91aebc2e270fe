"""Typed model of a `kind: Model` spec (apiVersion modelops.dev/v1alpha1).

Field names are the public contract: add optional fields, never rename.
Every model forbids unknown fields so a typo is an error, not a silently ignored setting.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, field_validator, model_validator
from pydantic_core import PydanticCustomError

from compiler.spec.types import (
    AlertLabels,
    ArtifactUri,
    DatasetPath,
    Duration,
    FeatureName,
    ImageRef,
    MetadataLabels,
    ModelName,
    Percentage,
    Quantity,
    SemVer,
    Sha256,
    TeamName,
)

API_VERSION = "modelops.dev/v1alpha1"

CLASSIFICATION_GATES = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_GATES = ("mse", "rmse", "mae", "r2")
# Gates where a higher score is better take a `min`; error metrics take a `max`.
LOWER_IS_BETTER = frozenset({"mse", "rmse", "mae"})
BOUNDED_0_1 = frozenset(CLASSIFICATION_GATES)
GateName = Literal["accuracy", "precision", "recall", "f1", "roc_auc", "mse", "rmse", "mae", "r2"]

Port = Annotated[int, Field(ge=1, le=65535)]


class SpecModel(BaseModel):
    """Base of every spec section: strict about unknown fields, immutable once validated."""

    # defer_build: a validator is built when first used, and only for the model validated,
    # not once more for every nested section; start-up is most of an incremental compile.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class Metadata(SpecModel):
    name: ModelName = Field(description="DNS-1123 label of at most 40 characters")
    team: TeamName = Field(
        description="Owning team, a Kubernetes label value; used for labels and alert routing"
    )
    description: str | None = None
    labels: MetadataLabels = Field(default_factory=dict, description="Copied onto every generated object")


class Feature(SpecModel):
    name: FeatureName
    type: Literal["float", "int", "bool", "string"] = "float"


class ModelArtifact(SpecModel):
    framework: str = Field(description="Only sklearn in v1alpha1")
    task: Literal["classification", "regression"]
    version: SemVer
    uri: ArtifactUri
    sha256: Sha256 | None = Field(default=None, description="Optional pin, lowercase hex")
    features: list[Feature] = Field(default_factory=list)

    @field_validator("framework")
    @classmethod
    def _only_sklearn(cls, value: str) -> str:
        if value != "sklearn":
            raise PydanticCustomError(
                "framework",
                "framework {value} is not supported in v1alpha1; only 'sklearn' is (save the "
                "model with skops)",
                {"value": repr(value)},
            )
        return value

    @field_validator("features")
    @classmethod
    def _unique_features(cls, value: list[Feature]) -> list[Feature]:
        seen: set[str] = set()
        for feature in value:
            if feature.name in seen:
                raise PydanticCustomError(
                    "feature_duplicate", "feature {name} is listed twice", {"name": repr(feature.name)}
                )
            seen.add(feature.name)
        return value


class Gate(SpecModel):
    min: FiniteFloat | None = None
    max: FiniteFloat | None = None

    def describe(self) -> str:
        """The bound as people read it: `>= 0.8`, `<= 60`, or both."""
        parts = [
            f">= {self.min:g}" if self.min is not None else "",
            f"<= {self.max:g}" if self.max is not None else "",
        ]
        return " and ".join(part for part in parts if part)

    def passes(self, measured: float | None) -> bool:
        """Whether a measured value meets the gate; an unmeasured metric never does."""
        if measured is None:
            return False
        return (self.min is None or measured >= self.min) and (self.max is None or measured <= self.max)

    @model_validator(mode="after")
    def _has_bound(self) -> Gate:
        if self.min is None and self.max is None:
            raise PydanticCustomError("gate_empty", "a gate needs a min or a max", {})
        if self.min is not None and self.max is not None and self.min > self.max:
            raise PydanticCustomError(
                "gate_range",
                "gate min {min} is greater than its max {max}",
                {"min": self.min, "max": self.max},
            )
        return self


class Evaluation(SpecModel):
    dataset: DatasetPath = Field(description="Repo-relative CSV holdout set")
    target: str = Field(min_length=1, description="Name of the label column")
    gates: dict[GateName, Gate] = Field(default_factory=dict)


class Replicas(SpecModel):
    min: int = Field(default=1, ge=1, le=1000)
    max: int = Field(default=1, ge=1, le=1000)


class Autoscaling(SpecModel):
    cpu: int = Field(ge=1, le=100, description="Target CPU utilisation, percent")


class ResourceList(SpecModel):
    cpu: Quantity | None = None
    memory: Quantity | None = None
    ephemeral_storage: Quantity | None = Field(default=None, alias="ephemeral-storage")


class Resources(SpecModel):
    requests: ResourceList = Field(default_factory=ResourceList)
    limits: ResourceList = Field(default_factory=ResourceList)


class Serving(SpecModel):
    runtime: Literal["builtin", "kserve"] = "builtin"
    image: ImageRef | None = Field(default=None, description="Runtime image; the project default applies")
    port: Port = 8080
    metricsPort: Port = Field(default=9090, description="Port of /metrics, scraped by Prometheus")
    replicas: Replicas = Field(default_factory=Replicas)
    autoscaling: Autoscaling | None = None
    resources: Resources = Field(default_factory=Resources)


class Latency(SpecModel):
    threshold: Duration
    target: Percentage


class Slo(SpecModel):
    window: Duration = Field(default_factory=lambda: Duration("28d", 28 * 86_400_000))
    availability: Percentage | None = None
    latency: Latency | None = None


# The runtime's PSI stays below 2 ln(1 / EMPTY_BIN_SHARE), about 18.4 (all the mass moved to a
# bin that was empty); beyond 10 the distributions barely overlap, so a higher threshold is a typo.
PSI_MAX = 10.0


class Psi(SpecModel):
    warning: FiniteFloat = Field(gt=0, le=PSI_MAX, description="PSI that raises a warning, such as 0.1")
    critical: FiniteFloat = Field(
        gt=0, le=PSI_MAX, description="PSI that raises a critical alert, such as 0.25"
    )


class Drift(SpecModel):
    psi: Psi | None = None


class Alerts(SpecModel):
    runbook: Annotated[str, Field(pattern=r"^https?://\S+$", max_length=2048)] | None = None
    labels: AlertLabels = Field(
        default_factory=dict, description="Added to every alert, e.g. for Alertmanager routing"
    )
    invalidInputRatio: float = Field(
        default=0.05, gt=0, lt=1, description="Share of invalid requests that raises an alert"
    )


class Monitoring(SpecModel):
    slo: Slo | None = None
    drift: Drift | None = None
    alerts: Alerts = Field(default_factory=Alerts)


class EnvironmentOverlay(SpecModel):
    """What an environment may override; each section is deep-merged over the spec's."""

    model: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
    serving: dict[str, Any] | None = None
    monitoring: dict[str, Any] | None = None


class Spec(SpecModel):
    model: ModelArtifact
    evaluation: Evaluation | None = None
    serving: Serving = Field(default_factory=Serving)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    environments: dict[str, EnvironmentOverlay] = Field(default_factory=dict)


class ModelSpec(SpecModel):
    """One model, as written in one file."""

    apiVersion: Literal["modelops.dev/v1alpha1"]
    kind: Literal["Model"]
    metadata: Metadata
    spec: Spec
