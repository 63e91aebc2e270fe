"""Kubernetes manifests for the builtin runtime."""

from compiler.targets.kubernetes.render import RenderedObject, namespace_object, render_model

__all__ = ["RenderedObject", "namespace_object", "render_model"]
