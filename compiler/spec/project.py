"""Typed model of the project file `specs/modelops.yaml` (kind: Project).

The project declares the environments every model is compiled for, defaults deep-merged
under every spec, and policies that specs must meet per environment.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

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


def _checked(value: str, pattern: str, max_length: int, what: str, example: str, *, also: bool = True) -> str:
    """`value` if it matches `pattern` (and `also` holds), else an error saying what is expected."""
    if not also or len(value) > max_length or re.fullmatch(pattern, value) is None:
        raise PydanticCustomError(
            "gitops_field",
            "{value} is not {what}, such as {example} (at most {limit} characters)",
            {"value": repr(value), "what": what, "limit": max_length, "example": example},
        )
    return value


def _text(default: str, description: str, pattern: str, max_length: int) -> Any:
    """A string field whose JSON Schema states the rule its validator enforces (for editors)."""
    return Field(
        default=default,
        description=description,
        json_schema_extra={"pattern": pattern, "maxLength": max_length},
    )


class GitOps(SpecModel):
    """Where sync tools find the generated tree (used for the Argo CD and Flux entry points).

    Every field is copied into the Argo CD ApplicationSet or the Flux Kustomization, so each
    is checked as what it names there: nothing else can be smuggled into those objects.
    """

    repoURL: str = _text(
        "https://github.com/example/modelops.git",
        "Git URL (https://, http://, ssh://, git://) or scp-like git@host:path",
        REPO_URL_PATTERN,
        URL_MAX,
    )
    revision: str = _text("main", "Branch, tag or commit that Argo CD syncs", REVISION_PATTERN, REVISION_MAX)
    path: str = _text(
        "generated", "Directory of the generated tree in the repository", REPO_PATH_PATTERN, PATH_MAX
    )
    fluxSource: str = _text(
        "modelops", "Name of the Flux GitRepository", DNS_SUBDOMAIN_PATTERN, OBJECT_NAME_MAX
    )
    argocdProject: str = _text(
        "default", "Argo CD AppProject of the Applications", DNS_SUBDOMAIN_PATTERN, OBJECT_NAME_MAX
    )
    argocdNamespace: DnsLabel = Field(default="argocd", description="Namespace of the ApplicationSets")
    fluxNamespace: DnsLabel = Field(default="flux-system", description="Namespace of the Flux Kustomizations")

    @field_validator("repoURL")
    @classmethod
    def _repo_url(cls, value: str) -> str:
        return _checked(
            value,
            REPO_URL_PATTERN,
            URL_MAX,
            "a Git URL (https://, http://, ssh://, git://, or scp-like user@host:path)",
            "https://github.com/acme/modelops.git",
        )

    @field_validator("revision")
    @classmethod
    def _revision(cls, value: str) -> str:
        git_rules = ".." not in value and not value.endswith(".") and ".lock/" not in f"{value}/"
        return _checked(
            value, REVISION_PATTERN, REVISION_MAX, "a Git branch, tag or commit", "main", also=git_rules
        )

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return _checked(
            value,
            REPO_PATH_PATTERN,
            PATH_MAX,
            "a directory relative to the repository root (names of letters, digits, '.', '_' and "
            "'-' joined by '/'; no leading or trailing '/', no hidden names or '..')",
            "generated",
        )

    @field_validator("fluxSource", "argocdProject")
    @classmethod
    def _object_name(cls, value: str) -> str:
        return _checked(
            value,
            DNS_SUBDOMAIN_PATTERN,
            OBJECT_NAME_MAX,
            "a Kubernetes object name (a DNS-1123 subdomain: lowercase letters, digits, '-' and '.')",
            "modelops",
        )


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
