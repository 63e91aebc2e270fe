"""Typed model of the project file `specs/modelops.yaml` (kind: Project).

The project declares the environments every model is compiled for, defaults deep-merged
under every spec, and policies that specs must meet per environment.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from compiler.spec.model import SpecModel
from compiler.spec.types import DnsLabel

PROJECT_FILE = "modelops.yaml"


class EnvironmentConfig(SpecModel):
    name: DnsLabel
    namespace: DnsLabel
    context: str | None = Field(default=None, description="kubeconfig context for diff/apply")
    createNamespace: bool = Field(default=False, description="Emit a Namespace object")


class GrafanaDefaults(SpecModel):
    datasource: str = Field(default="prometheus", min_length=1, description="Prometheus datasource uid")
    url: str | None = Field(default=None, pattern=r"^https?://\S+$", description="Base URL for links")


class Defaults(SpecModel):
    """Spec sections merged under every model, plus project-wide settings."""

    serving: dict[str, Any] | None = None
    monitoring: dict[str, Any] | None = None
    grafana: GrafanaDefaults = Field(default_factory=GrafanaDefaults)


class PolicyRequirements(SpecModel):
    minReplicas: int | None = Field(default=None, ge=1)
    availabilitySLO: bool = False
    latencySLO: bool = False
    runbook: bool = False
    evaluationGates: bool = False
    sha256Pin: bool = False
    memoryLimit: bool = False
    imageRegistries: list[str] | None = Field(default=None, min_length=1)


class Policy(SpecModel):
    name: DnsLabel
    description: str | None = None
    environments: list[str] | None = Field(default=None, description="Omit to apply everywhere")
    severity: Literal["error", "warning"] = "error"
    require: PolicyRequirements


class Output(SpecModel):
    stamp: bool = Field(
        default=True, description="Annotate objects with the Git commit they were compiled from"
    )


class GitOps(SpecModel):
    """Where sync tools find the generated tree (used for the Argo CD and Flux entry points)."""

    repoURL: str = "https://github.com/example/modelops.git"
    revision: str = "main"
    path: str = "generated"
    fluxSource: str = Field(default="modelops", description="Name of the Flux GitRepository")
    argocdProject: str = "default"
    argocdNamespace: str = "argocd"
    fluxNamespace: str = "flux-system"


class ProjectMetadata(SpecModel):
    name: DnsLabel


class Project(SpecModel):
    apiVersion: Literal["modelops.dev/v1alpha1"]
    kind: Literal["Project"]
    metadata: ProjectMetadata
    environments: list[EnvironmentConfig] = Field(min_length=1)
    defaults: Defaults = Field(default_factory=Defaults)
    policies: list[Policy] = Field(default_factory=list)
    output: Output = Field(default_factory=Output)
    gitops: GitOps = Field(default_factory=GitOps)

    def environment(self, name: str) -> EnvironmentConfig | None:
        return next((env for env in self.environments if env.name == name), None)
