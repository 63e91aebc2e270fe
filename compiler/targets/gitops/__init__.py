"""What a GitOps controller reads to sync generated/: an Argo CD ApplicationSet and a Flux
Kustomization per environment."""

from compiler.targets.gitops.argocd import application_set
from compiler.targets.gitops.flux import flux_kustomization

__all__ = ["application_set", "flux_kustomization"]
