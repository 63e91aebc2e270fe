"""The IR: one fully resolved model per (model, environment), every default filled in.

Renderers take only this. It is immutable (frozen pydantic models all the way down), so a
renderer cannot change what the next renderer sees.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from compiler.spec.model import Evaluation, ModelArtifact, Monitoring, Serving
from compiler.spec.project import EnvironmentAlerts, GrafanaDefaults
from compiler.spec.records import EvaluationRecord


class ResolvedModel(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

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
    evaluated: EvaluationRecord | None = None  # the matching record from `modelops evaluate`

    @property
    def key(self) -> tuple[str, str, str]:
        """Sort key and identity: environment, namespace, model."""
        return (self.environment, self.namespace, self.name)
