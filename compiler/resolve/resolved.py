"""The IR: one fully resolved model per (model, environment), every default filled in.

Renderers take only this. It is immutable (frozen pydantic models all the way down), so a
renderer cannot change what the next renderer sees.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from compiler.spec.model import Candidate, Evaluation, ModelArtifact, Monitoring, Rollout, Serving
from compiler.spec.project import EnvironmentAlerts, EnvironmentPrometheus, GrafanaDefaults
from compiler.spec.records import EvaluationRecord


class ResolvedModel(BaseModel):
    # Its JSON is hashed into the model's input hash: an evaluation record's measured numbers may
    # be NaN or infinite (a metric undefined on the holdout), and must hash apart (NaN, Infinity),
    # where pydantic's default writes each as null. The spec's own numbers are finite.
    model_config = ConfigDict(frozen=True, defer_build=True, ser_json_inf_nan="constants")

    name: str
    environment: str
    namespace: str
    kube_context: str | None
    create_namespace: bool
    project: str
    team: str
    description: str | None
    labels: dict[str, str]
    source: str  # spec file, relative to the project root, with forward slashes
    model: ModelArtifact
    evaluation: Evaluation | None
    serving: Serving
    image: str
    monitoring: Monitoring
    grafana: GrafanaDefaults
    alerting: EnvironmentAlerts = EnvironmentAlerts()  # the environment's severity mapping
    prometheus: EnvironmentPrometheus = EnvironmentPrometheus()  # what canary analysis queries
    evaluated: EvaluationRecord | None = None  # the matching record from `modelops evaluate`
    # Progressive delivery. `model` is always what the pods serve: with a candidate under the
    # rolling or canary strategy that is the candidate (so promoting it changes no byte of the
    # workload), and `stable` is the spec's model it replaces. Under shadow, `model` is the
    # spec's model and `shadow` the candidate the runtime scores off the response path.
    rollout: Rollout = Rollout()
    candidate: Candidate | None = None  # as written in the spec (for review and history)
    stable: ModelArtifact | None = None
    stable_evaluated: EvaluationRecord | None = None
    shadow: ModelArtifact | None = None
    shadow_evaluated: EvaluationRecord | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """Sort key and identity: environment, namespace, model."""
        return (self.environment, self.namespace, self.name)
