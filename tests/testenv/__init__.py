"""A real Kubernetes control plane for the reconcile tests: kube-apiserver and etcd, no Docker.

Both are built from the Go module proxy (see build.py) and cached by version in the user
cache directory; `KUBEBUILDER_ASSETS` (envtest's binaries) is used instead when set. There
is no controller-manager: namespaces stay Terminating once deleted, garbage collection does
not happen, and no default ServiceAccount appears, so tests use fresh namespaces.
"""
