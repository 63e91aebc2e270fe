"""Typed model of the project file `specs/modelops.yaml` (kind: Project).

The project declares the environments every model is compiled for, defaults deep-merged
under every spec, and policies that specs must meet per environment.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from compiler.spec.model import SpecModel
from compiler.spec.types import DnsLabel, PrometheusLabelName

PROJECT_FILE = "modelops.yaml"


# The `severity` label of generated alerts: critical pages, warning opens a ticket.
AlertSeverity = Literal["critical", "warning", "info"]
# Labels modelops sets on every alert itself: an environment cannot drop them.
MODELOPS_ALERT_LABELS = frozenset({"severity", "team", "model", "namespace", "environment", "slo"})


class EnvironmentAlerts(SpecModel):
    """How the alerts compiled for one environment are labelled, for Alertmanager's routing."""

    severity: dict[Literal["critical", "warning"], AlertSeverity] = Field(
        default_factory=dict,
        description="Severity replacements in this environment: {critical: warning} makes pages tickets",
    )
    dropLabels: list[PrometheusLabelName] = Field(
        default_factory=list,
        description="Specs' alerts.labels left off in this environment, e.g. [pager]",
    )

    @field_validator("dropLabels")
    @classmethod
    def _droppable(cls, value: list[str]) -> list[str]:
        if reserved := sorted(MODELOPS_ALERT_LABELS.intersection(value)):
            raise PydanticCustomError(
                "alert_label",
                "{labels} set by modelops on every alert, cannot be dropped (only specs' alerts.labels)",
                {"labels": ", ".join(reserved) + (" is" if len(reserved) == 1 else " are")},
            )
        return value


class EnvironmentPrometheus(SpecModel):
    """The Prometheus that Argo Rollouts' analysis queries (canary rollouts)."""

    address: str = Field(
        default="http://prometheus-operated.monitoring.svc:9090",
        pattern=r"^https?://[^\s/]+(?::[0-9]+)?(?:/\S*)?$",
        max_length=2048,
        description="Base URL of the Prometheus HTTP API, as seen from the Argo Rollouts controller",
    )


class EnvironmentConfig(SpecModel):
    name: DnsLabel
    namespace: DnsLabel
    context: str | None = Field(default=None, description="kubeconfig context for diff/apply")
    createNamespace: bool = Field(default=False, description="Emit a Namespace object")
    alerts: EnvironmentAlerts = Field(default_factory=EnvironmentAlerts)
    prometheus: EnvironmentPrometheus = Field(default_factory=EnvironmentPrometheus)


class GrafanaDefaults(SpecModel):
    datasource: str = Field(default="prometheus", min_length=1, description="Prometheus datasource uid")
    url: str | None = Field(default=None, pattern=r"^https?://\S+$", description="Base URL for links")


class Defaults(SpecModel):
    """Spec sections merged under every model, plus project-wide settings."""

    serving: dict[str, Any] | None = None
    monitoring: dict[str, Any] | None = None
    rollout: dict[str, Any] | None = None
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
    imageDigest: bool = Field(
        default=False, description="The runtime image is pinned by digest (image@sha256:...), not a tag"
    )


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


# Kubernetes object names (AppProject, GitRepository): DNS-1123 subdomains.
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A Git remote as Argo CD clones it: a URL, or scp-like user@host:path. RFC 3986 characters
# only: no whitespace, no control characters, no quotes, no braces (template syntax).
_URL_CHARS = r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]"
REPO_URL_PATTERN = rf"^((https?|ssh|git)://{_URL_CHARS}+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:{_URL_CHARS}+)$"
# A branch, tag or commit, by git check-ref-format's rules, and narrower: letters, digits and
# . _ + - / only (no '@{', '~', '^', ':', '?', '*', '[', '\\', spaces or braces), no component
# starting with '.' or ending with '.lock', no '..', no empty component, no trailing '.'.
_REF_COMPONENT = r"[A-Za-z0-9_+-][A-Za-z0-9._+-]*"
REVISION_PATTERN = rf"^{_REF_COMPONENT}(/{_REF_COMPONENT})*$"
# A directory inside the repository: plain names joined by '/', none hidden or '..' (empty
# for the repository root). No glob characters: the Argo CD generator matches it as a pattern.
_PATH_SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9._-]*"
REPO_PATH_PATTERN = rf"^({_PATH_SEGMENT}(/{_PATH_SEGMENT})*)?$"


URL_MAX, REVISION_MAX, PATH_MAX, OBJECT_NAME_MAX = 2048, 255, 1024, 253


@dataclass(frozen=True)
class _Named:
    """What a gitops field names: one rule, checked by the validator and stated in the schema."""

    pattern: str
    max_length: int
    what: str
    example: str
    also: Callable[[str], bool] = lambda _: True  # what the pattern cannot say

    def field(self, default: str, description: str) -> Any:
        """A string field whose JSON Schema states the rule (for editors)."""
        return Field(
            default=default,
            description=description,
            json_schema_extra={"pattern": self.pattern, "maxLength": self.max_length},
        )

    def checked(self, value: str) -> str:
        """`value` if it follows the rule, else an error saying what is expected."""
        if not self.also(value) or len(value) > self.max_length or re.fullmatch(self.pattern, value) is None:
            raise PydanticCustomError(
                "gitops_field",
                "{value} is not {what}, such as {example} (at most {limit} characters)",
                {"value": repr(value), "what": self.what, "limit": self.max_length, "example": self.example},
            )
        return value


def _git_ref_rules(value: str) -> bool:
    """git check-ref-format's rules that the pattern leaves out."""
    return ".." not in value and not value.endswith(".") and ".lock/" not in f"{value}/"


_REPO_URL = _Named(
    REPO_URL_PATTERN,
    URL_MAX,
    "a Git URL (https://, http://, ssh://, git://, or scp-like user@host:path)",
    "https://github.com/acme/modelops.git",
)
_REVISION = _Named(REVISION_PATTERN, REVISION_MAX, "a Git branch, tag or commit", "main", _git_ref_rules)
_REPO_PATH = _Named(
    REPO_PATH_PATTERN,
    PATH_MAX,
    "a directory relative to the repository root (names of letters, digits, '.', '_' and "
    "'-' joined by '/'; no leading or trailing '/', no hidden names or '..')",
    "generated",
)
_OBJECT_NAME = _Named(
    DNS_SUBDOMAIN_PATTERN,
    OBJECT_NAME_MAX,
    "a Kubernetes object name (a DNS-1123 subdomain: lowercase letters, digits, '-' and '.')",
    "modelops",
)
_NAMED_FIELDS = {
    "repoURL": _REPO_URL,
    "revision": _REVISION,
    "path": _REPO_PATH,
    "fluxSource": _OBJECT_NAME,
    "argocdProject": _OBJECT_NAME,
}


class GitOps(SpecModel):
    """Where sync tools find the generated tree (used for the Argo CD and Flux entry points).

    Every field is copied into the Argo CD ApplicationSet or the Flux Kustomization, so each
    is checked as what it names there: nothing else can be smuggled into those objects.
    """

    repoURL: str = _REPO_URL.field(
        "https://github.com/example/modelops.git",
        "Git URL (https://, http://, ssh://, git://) or scp-like git@host:path",
    )
    revision: str = _REVISION.field("main", "Branch, tag or commit that Argo CD syncs")
    path: str = _REPO_PATH.field("generated", "Directory of the generated tree in the repository")
    fluxSource: str = _OBJECT_NAME.field("modelops", "Name of the Flux GitRepository")
    argocdProject: str = _OBJECT_NAME.field("default", "Argo CD AppProject of the Applications")
    argocdNamespace: DnsLabel = Field(default="argocd", description="Namespace of the ApplicationSets")
    fluxNamespace: DnsLabel = Field(default="flux-system", description="Namespace of the Flux Kustomizations")

    @field_validator(*_NAMED_FIELDS)
    @classmethod
    def _named(cls, value: str, info: ValidationInfo) -> str:
        return _NAMED_FIELDS[str(info.field_name)].checked(value)


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
