"""Typed model of a `kind: Model` spec (apiVersion modelops.dev/v1alpha1).

Field names are the public contract: add optional fields, never rename.
Every model forbids unknown fields so a typo is an error, not a silently ignored setting.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from compiler.spec.types import (
    AlertLabels,
    ArtifactUri,
    Cidr,
    DatasetPath,
    DnsLabel,
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
GATE_NAMES = frozenset(CLASSIFICATION_GATES + REGRESSION_GATES)

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


class RelativeGate(SpecModel):
    """How much worse than the stable version a candidate may score on the same holdout."""

    maxDrop: FiniteFloat | None = Field(
        default=None, ge=0, description="Scores (higher is better): at most this far below the stable's"
    )
    maxIncrease: FiniteFloat | None = Field(
        default=None, ge=0, description="Error measures (mse, rmse, mae): at most this far above the stable's"
    )

    @property
    def allowance(self) -> float:
        """The bound, whichever way it points."""
        return self.maxDrop if self.maxDrop is not None else self.maxIncrease or 0.0

    def describe(self) -> str:
        """The allowance as people read it: `drop <= 0.01` or `increase <= 5`."""
        return f"{'drop' if self.maxDrop is not None else 'increase'} <= {self.allowance:g}"

    def limit(self, stable: float) -> float:
        """The candidate's worst acceptable score, rounded like measured metrics so that a
        candidate exactly at the allowance passes."""
        moved = stable - self.allowance if self.maxDrop is not None else stable + self.allowance
        return float(f"{moved:.6g}")

    def passes(self, stable: float | None, candidate: float | None) -> bool:
        """Whether the candidate stays within the allowance; an unmeasured side never does."""
        if stable is None or candidate is None:
            return False
        limit = self.limit(stable)
        return candidate >= limit if self.maxDrop is not None else candidate <= limit

    @model_validator(mode="after")
    def _one_bound(self) -> RelativeGate:
        if (self.maxDrop is None) == (self.maxIncrease is None):
            raise PydanticCustomError(
                "relative_gate_bound",
                "a relative gate takes exactly one of maxDrop (scores) or maxIncrease (error measures)",
                {},
            )
        return self


class Gates(SpecModel):
    """Absolute gates by metric (each version must meet them on its own) and `relative` ones
    (the candidate against the stable version). Gates keep the order they were written in."""

    accuracy: Gate | None = None
    precision: Gate | None = None
    recall: Gate | None = None
    f1: Gate | None = None
    roc_auc: Gate | None = None
    mse: Gate | None = None
    rmse: Gate | None = None
    mae: Gate | None = None
    r2: Gate | None = None
    relative: dict[GateName, RelativeGate] = Field(
        default_factory=dict,
        description="Candidate against stable on the same holdout, such as {roc_auc: {maxDrop: 0.01}}",
    )
    _written: tuple[GateName, ...] = PrivateAttr(default=())

    def absolute(self) -> dict[GateName, Gate]:
        """The absolute gates, in the order the spec wrote them."""
        return {name: getattr(self, name) for name in self._written}  # only gates that are set

    @model_validator(mode="wrap")
    @classmethod
    def _keep_order(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Gates:
        gates: Gates = handler(data)
        if isinstance(data, dict):
            gates._written = tuple(name for name in data if name in GATE_NAMES and data[name] is not None)
        return gates

    @model_serializer(mode="wrap")
    def _as_written(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The mapping as written (absolute gates by name, `relative` only when set), so the
        input hash of a spec without relative gates is what it was when gates were a mapping."""
        dumped: dict[str, Any] = handler(self)
        found: dict[str, Any] = {name: dumped[name] for name in self._written}
        if self.relative:
            found["relative"] = dumped["relative"]
        return found


class Evaluation(SpecModel):
    dataset: DatasetPath = Field(description="Repo-relative CSV holdout set")
    target: str = Field(min_length=1, description="Name of the label column")
    gates: Gates = Field(default_factory=Gates)


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


class Storage(SpecModel):
    """Size limits of the pod's scratch volumes (emptyDir); the container's ephemeral-storage
    request and limit are computed from them unless resources set ephemeral-storage."""

    modelCache: Quantity = Field(
        default="2Gi",
        validate_default=True,
        description="emptyDir the runtime caches the model artifact in",
    )
    tmp: Quantity = Field(
        default="64Mi",
        validate_default=True,
        description="emptyDir mounted at /tmp",
    )

    @field_validator("modelCache", "tmp")
    @classmethod
    def _positive(cls, value: Quantity) -> Quantity:
        if value.value < 1:
            raise PydanticCustomError(
                "storage_size", "a volume size must be at least 1 byte, got {value}", {"value": value.text}
            )
        return value


class EgressRule(SpecModel):
    """One more place the pods may connect to: a namespace or an IP range, on some ports."""

    namespace: DnsLabel | None = Field(default=None, description="Every pod of this namespace")
    cidr: Cidr | None = Field(default=None, description="An IP range, such as 10.0.0.0/8")
    ports: list[Port] = Field(min_length=1, max_length=32)
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"

    @model_validator(mode="after")
    def _one_destination(self) -> EgressRule:
        if (self.namespace is None) == (self.cidr is None):
            raise PydanticCustomError(
                "egress_destination", "an egress rule names exactly one of namespace or cidr", {}
            )
        return self


class Network(SpecModel):
    """Who may reach the pods and where they may connect (the model's NetworkPolicy).

    The project sets these for every model under defaults.serving.network.
    """

    sameNamespace: bool = Field(
        default=True, description="Pods of the model's own namespace may reach the serving port"
    )
    ingressNamespaces: list[DnsLabel] = Field(
        default_factory=list,
        max_length=64,
        description="Namespaces whose pods may reach the serving port (an ingress controller's, a gateway's)",
    )
    monitoringNamespaces: list[DnsLabel] = Field(
        default_factory=lambda: ["monitoring"],
        max_length=64,
        description="Namespaces whose pods may reach the metrics port (Prometheus)",
    )
    dns: bool = Field(default=True, description="Allow DNS lookups (UDP and TCP 53) in dnsNamespace")
    dnsNamespace: DnsLabel = Field(default="kube-system", description="Namespace of the cluster DNS")
    artifactEgress: bool = Field(
        default=True,
        description="Allow what fetching the model needs: TCP 443 (or the https:// URI's port) "
        "for s3://, gs:// and https://; nothing for pvc:// and repository paths",
    )
    egress: list[EgressRule] = Field(default_factory=list, max_length=64, description="More destinations")


class Serving(SpecModel):
    runtime: Literal["builtin", "kserve"] = "builtin"
    image: ImageRef | None = Field(default=None, description="Runtime image; the project default applies")
    port: Port = 8080
    metricsPort: Port = Field(default=9090, description="Port of /metrics, scraped by Prometheus")
    replicas: Replicas = Field(default_factory=Replicas)
    autoscaling: Autoscaling | None = None
    resources: Resources = Field(default_factory=Resources)
    storage: Storage = Field(default_factory=Storage)
    network: Network = Field(default_factory=Network)


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
    window: Duration = Field(
        default_factory=lambda: Duration("1h", 3_600_000),
        description="Live shares are counted over this window, summed across pods",
    )
    minSamples: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000_000,
        description="Inputs in the window before PSI gives a verdict; default: where noise, about "
        "(bins - 1) / n, is a tenth of the warning threshold",
    )


class Feedback(SpecModel):
    """How predictions wait in each pod for their true labels (POST .../feedback)."""

    maxEntries: int = Field(
        default=100_000, ge=1, le=10_000_000, description="Predictions a pod holds awaiting labels"
    )
    ttl: Duration = Field(
        default_factory=lambda: Duration("1d", 86_400_000),
        description="How long a prediction waits for its label",
    )


class QualityTarget(SpecModel):
    """A quality objective: `min` for accuracy, precision, recall; `max` for mae, rmse."""

    min: FiniteFloat | None = Field(default=None, gt=0, lt=1)
    max: FiniteFloat | None = Field(default=None, gt=0)
    class_: str | None = Field(
        default=None,
        alias="class",
        max_length=63,
        description="The class precision or recall is measured for; default: 1",
    )


class Quality(SpecModel):
    """Quality SLOs from ground truth (feedback), with error budgets and burn-rate alerts."""

    accuracy: QualityTarget | None = None
    precision: QualityTarget | None = None
    recall: QualityTarget | None = None
    mae: QualityTarget | None = None
    rmse: QualityTarget | None = None
    window: Duration = Field(
        default_factory=lambda: Duration("7d", 7 * 86_400_000), description="The SLO period"
    )
    labelDelay: Duration = Field(
        default_factory=lambda: Duration("1h", 3_600_000),
        description="How long true labels take to arrive; alert windows start after it",
    )
    minFeedback: int = Field(
        default=100, ge=1, le=1_000_000_000, description="Labels in a window before it can alert"
    )


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
    quality: Quality | None = None
    feedback: Feedback = Field(default_factory=Feedback)


class Candidate(SpecModel):
    """The challenger: another version of the same model (same framework, task and features)."""

    version: SemVer
    uri: ArtifactUri
    sha256: Sha256 = Field(description="Required: the candidate is pinned like a release")


class CanaryStep(SpecModel):
    weight: int = Field(ge=1, le=99, description="Percent of traffic the candidate gets at this step")
    pause: Duration = Field(description="How long the step lasts while the analysis runs")


class CanaryAnalysis(SpecModel):
    """The measurements Argo Rollouts takes while the canary runs (an AnalysisTemplate)."""

    interval: Duration = Field(
        default_factory=lambda: Duration("1m", 60_000), description="Time between measurements"
    )
    window: Duration | None = Field(
        default=None,
        description="How far back each measurement looks; default: twice the interval, at least 2m",
    )
    failureLimit: int = Field(
        default=1, ge=0, le=100, description="Failed measurements tolerated; one more aborts the rollout"
    )
    minRequests: int = Field(
        default=50,
        ge=1,
        le=1_000_000_000,
        description="Candidate requests in a measurement's window below which it gives no verdict",
    )

    @property
    def measured_window(self) -> Duration:
        """How far back each measurement looks: `window`, else twice the interval, at least 2m."""
        if self.window is not None:
            return self.window
        return Duration.from_milliseconds(max(2 * self.interval.milliseconds, 120_000))

    @property
    def abort_possible_after(self) -> Duration:
        """The earliest a failing candidate can be aborted: the first measurement waits one
        window, then failureLimit + 1 measurements must fail, an interval apart."""
        after = self.measured_window.milliseconds + (self.failureLimit + 1) * self.interval.milliseconds
        return Duration.from_milliseconds(after)


class Canary(SpecModel):
    steps: list[CanaryStep] = Field(min_length=1, max_length=20)
    analysis: CanaryAnalysis = Field(default_factory=CanaryAnalysis)


class Shadow(SpecModel):
    """The candidate scores a copy of every request; its answers are compared, never returned."""

    maxDisagreement: FiniteFloat = Field(
        default=0.05, gt=0, lt=1, description="Share of compared rows that may disagree before an alert"
    )
    tolerance: FiniteFloat | None = Field(
        default=None, ge=0, description="Regressors (required): an absolute difference up to this agrees"
    )
    queueSize: int = Field(
        default=256, ge=1, le=100_000, description="Requests waiting to be shadowed; more are dropped"
    )
    minComparisons: int = Field(
        default=100, ge=1, le=1_000_000_000, description="Compared rows in the window before it can alert"
    )


class Rollout(SpecModel):
    """How a new version reaches traffic: all at once (rolling), earned (canary), or watched (shadow)."""

    strategy: Literal["rolling", "canary", "shadow"] = "rolling"
    canary: Canary | None = None
    shadow: Shadow = Field(default_factory=Shadow)


class EnvironmentOverlay(SpecModel):
    """What an environment may override; each section is deep-merged over the spec's."""

    model: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
    serving: dict[str, Any] | None = None
    monitoring: dict[str, Any] | None = None
    candidate: dict[str, Any] | None = None
    rollout: dict[str, Any] | None = None


class Spec(SpecModel):
    model: ModelArtifact
    candidate: Candidate | None = Field(default=None, description="The version that may replace `model`")
    rollout: Rollout = Field(default_factory=Rollout)
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
