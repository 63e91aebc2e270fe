"""The Argo CD ApplicationSet of one environment."""

from __future__ import annotations

from typing import Any

from compiler.spec.project import GitOps, Project
from compiler.targets.prometheus.promql import go_template_literal

# Sync retries of every Application: a model Application synced before its namespace exists
# fails (it does not create the namespace) and tries again, about 17 minutes in all.
RETRY = {"limit": 10, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m"}}
# The namespace directory holds its objects as plain YAML beside the overview dashboard's JSON
# (not an object) and the model directories (their own Applications).
NAMESPACE_DIRECTORY = {"recurse": False, "exclude": "*.json"}


def application_set(project: Project, environment: str) -> dict[str, Any]:
    """One Argo CD Application per model directory (fast, isolated syncs) and one for the
    namespace directory: the Namespace with its Pod Security labels and the overview dashboard.

    The Applications never create the namespace themselves (no CreateNamespace, whose namespace
    would lack the Pod Security labels): the namespace Application is the only way in, so a
    model's objects reach the cluster only after the labelled Namespace does; a model synced
    first fails and retries. Sync waves cannot order them: they order the objects of one
    Application's sync, and Applications an ApplicationSet generates have no parent sync.

    With goTemplate, Argo CD renders every string of a template as a Go template: the project's
    text goes in as a literal (validation already refuses braces in those fields; this holds
    whatever a field may one day accept). The generator's fields are not templates.
    """
    gitops: GitOps = project.gitops
    base = gitops.path
    depth = len(base.split("/")) if base else 0
    namespace_segment = f"{{{{ index .path.segments {depth + 1} }}}}"
    literal = go_template_literal

    def directories(*segments: str) -> list[dict[str, str]]:
        return [{"path": "/".join(p for p in (base, environment, *segments) if p)}]

    def destination() -> dict[str, str]:
        return {"server": "https://kubernetes.default.svc", "namespace": namespace_segment}

    def source(**extra: Any) -> dict[str, Any]:
        return {
            "repoURL": literal(gitops.repoURL),
            "targetRevision": literal(gitops.revision),
            "path": "{{ .path.path }}",
            **extra,
        }

    # A model is a DNS label, so no model Application can take a name with a dot in it.
    namespace_template = {
        "metadata": {"name": f"{literal(environment)}-{{{{ .path.basename }}}}.namespace"},
        "spec": {
            "project": literal(gitops.argocdProject),
            "source": source(directory=NAMESPACE_DIRECTORY),
            "destination": destination(),
        },
    }
    git = {"repoURL": gitops.repoURL, "revision": gitops.revision}
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
                # the namespace directory; its template overrides the set's (Argo CD fills
                # what it leaves out, the sync policy, from the set's template)
                {"git": {**git, "directories": directories("*"), "template": namespace_template}},
                {"git": {**git, "directories": directories("*", "*")}},  # the model directories
            ],
            "template": {
                "metadata": {"name": f"{literal(environment)}-{{{{ .path.basename }}}}"},
                "spec": {
                    "project": literal(gitops.argocdProject),
                    "source": source(),
                    "destination": destination(),
                    "syncPolicy": {
                        "automated": {"prune": True, "selfHeal": True},
                        "syncOptions": ["ServerSideApply=true"],
                        "retry": RETRY,
                    },
                },
            },
        },
    }
