"""Project policies: per-environment rules from modelops.yaml, reported as errors or warnings."""

from __future__ import annotations

from compiler.diagnostics import Diagnostic, Position, Severity
from compiler.spec.model import ModelSpec
from compiler.spec.project import Policy
from compiler.spec.types import image_digest
from compiler.spec.yamlsource import PathKey, PositionMap


def check_policies(
    policies: list[Policy],
    environment: str,
    spec: ModelSpec,
    image: str | None,
    positions: PositionMap,
    file: str,
) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for policy in policies:
        if policy.environments is not None and environment not in policy.environments:
            continue
        severity = Severity(policy.severity)
        for path, problem in _violations(policy, spec, image):
            position = _in_spec_file(positions, path, file)
            message = f"policy {policy.name!r} ({environment}): {problem}"
            if position is None:
                found.append(Diagnostic(file, 1, 1, message, severity, "policy"))
            else:
                found.append(Diagnostic.at(position, message, severity=severity, code="policy"))
    return found


def _violations(policy: Policy, spec: ModelSpec, image: str | None) -> list[tuple[PathKey, str]]:
    need = policy.require
    body = spec.spec
    slo = body.monitoring.slo
    found: list[tuple[PathKey, str]] = []
    if need.minReplicas is not None and body.serving.replicas.min < need.minReplicas:
        found.append(
            (
                ("spec", "serving", "replicas", "min"),
                f"replicas.min is {body.serving.replicas.min}, needs at least {need.minReplicas}",
            )
        )
    if need.availabilitySLO and (slo is None or slo.availability is None):
        found.append((("spec", "monitoring"), "needs an availability SLO (monitoring.slo.availability)"))
    if need.latencySLO and (slo is None or slo.latency is None):
        found.append((("spec", "monitoring"), "needs a latency SLO (monitoring.slo.latency)"))
    if need.runbook and body.monitoring.alerts.runbook is None:
        found.append((("spec", "monitoring"), "needs a runbook URL (monitoring.alerts.runbook)"))
    if need.evaluationGates and (body.evaluation is None or not body.evaluation.gates.absolute()):
        found.append((("spec",), "needs evaluation gates (spec.evaluation.gates)"))
    if need.sha256Pin and body.model.sha256 is None:
        found.append((("spec", "model"), "needs the artifact pinned with spec.model.sha256"))
    if need.memoryLimit and body.serving.resources.limits.memory is None:
        found.append((("spec", "serving"), "needs a memory limit (serving.resources.limits.memory)"))
    if need.imageRegistries is not None and image is not None:
        allowed = need.imageRegistries
        if not any(image.startswith(prefix.rstrip("/") + "/") for prefix in allowed):
            found.append(
                (
                    ("spec", "serving", "image"),
                    f"image {image!r} is not from an allowed registry ({', '.join(allowed)})",
                )
            )
    if need.imageDigest and image is not None and image_digest(image) is None:
        found.append(
            (
                ("spec", "serving", "image"),
                f"image {image!r} is a movable tag; pin it by digest as image@sha256:<64 hex> "
                "(in spec.serving.image, or defaults.serving.image in the project file)",
            )
        )
    return found


def _in_spec_file(positions: PositionMap, path: PathKey, file: str) -> Position | None:
    """The nearest place on `path` written in the spec file itself, not in project defaults.

    A policy is about the spec: pointing at the project file's defaults would send the
    author to a file they should not edit.
    """
    for end in range(len(path), 1, -1):
        position = positions.values.get(path[:end])
        if position is not None and position.file == file:
            return position
    return positions.value(("metadata", "name"))
