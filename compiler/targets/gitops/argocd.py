"""The Argo CD ApplicationSet of one environment."""

from __future__ import annotations

from typing import Any

from compiler.spec.project import GitOps, Project
from compiler.targets.prometheus.promql import go_template_literal


def application_set(project: Project, environment: str) -> dict[str, Any]:
    """One Argo CD Application per model directory: fast, isolated syncs.

    With goTemplate, Argo CD renders every string of `template` as a Go template: the project's
    text goes in as a literal (validation already refuses braces in those fields; this holds
    whatever a field may one day accept). The generator's fields are not templates.
    """
    gitops: GitOps = project.gitops
    base = gitops.path
    depth = len(base.split("/")) if base else 0
    namespace_segment = f"{{{{ index .path.segments {depth + 1} }}}}"
    literal = go_template_literal
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {
            "name": f"{project.metadata.name}-{environment}",
            "namespace": gitops.argocdNamespace,
            "labels": {
                "app.kubernetes.io/managed-by": "modelops",
                "app.kubernetes.io/part-of": project.metadata.name,
            },
        },
        "spec": {
            "goTemplate": True,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [
                {
                    "git": {
                        "repoURL": gitops.repoURL,
                        "revision": gitops.revision,
                        "directories": [{"path": "/".join(p for p in (base, environment, "*", "*") if p)}],
                    }
                }
            ],
            "template": {
                "metadata": {"name": f"{literal(environment)}-{{{{ .path.basename }}}}"},
                "spec": {
                    "project": literal(gitops.argocdProject),
                    "source": {
                        "repoURL": literal(gitops.repoURL),
                        "targetRevision": literal(gitops.revision),
                        "path": "{{ .path.path }}",
                    },
                    "destination": {
                        "server": "https://kubernetes.default.svc",
                        "namespace": namespace_segment,
                    },
                    "syncPolicy": {
                        "automated": {"prune": True, "selfHeal": True},
                        "syncOptions": ["CreateNamespace=true", "ServerSideApply=true"],
                    },
                },
            },
        },
    }
