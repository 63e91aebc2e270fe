"""Canary delivery with Argo Rollouts: the Rollout that replaces the Deployment, its stable and
canary Services, and which checks its analysis can run. Pure: no I/O, no clock.

The Rollout replaces the Deployment rather than referencing it through `workloadRef`: with a
reference, two objects describe one workload, and Argo scales the Deployment that Git still
declares with its replicas, so the GitOps tool and Argo fight over it. Replacing it keeps one
object that holds the pod template, so promoting a candidate (it becomes `model`) changes no
byte of it, and aborting (the candidate removed) puts the stable's template back, which Argo
rolls back to at once.
"""

from __future__ import annotations

from typing import Any

from compiler.resolve.resolved import ResolvedModel
from compiler.spec.model import ModelArtifact
from compiler.spec.records import EvaluationRecord
from compiler.spec.types import Duration

Obj = dict[str, Any]

API_VERSION = "argoproj.io/v1alpha1"
STABLE = "stable"
CANARY = "canary"
# What the analysis can judge, in the order of the AnalysisTemplate's metrics.
AVAILABILITY = "availability"
LATENCY = "latency"
DRIFT = "drift"
CLASS_SHARES = "class-shares"


def is_canary(model: ResolvedModel) -> bool:
    return model.rollout.strategy == "canary"


def service_name(model: ResolvedModel, role: str) -> str:
    return f"{model.name}-{role}"


def go_duration(duration: Duration) -> str:
    """A duration as Go's time.ParseDuration reads it (Argo Rollouts' pauses and intervals),
    which knows no days or weeks: 1d is 24h."""
    rest, parts = duration.milliseconds, []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)


def analysis_window(model: ResolvedModel) -> Duration:
    """How far back each measurement looks: the spec's window, else twice the interval, at least 2m."""
    canary = model.rollout.canary
    assert canary is not None
    return canary.analysis.measured_window


def _binned(record: EvaluationRecord | None, artifact: ModelArtifact, predictions: bool = False) -> bool:
    """Whether pods serving `artifact` count inputs (and, asked, predictions) per bin: the runtime
    does when the record has a baseline for every declared feature (see runtime_config)."""
    names = [f.name for f in artifact.features]
    return (
        record is not None
        and bool(names)
        and all(name in record.baseline for name in names)
        and (record.predictions is not None or not predictions)
    )


def stable_view(model: ResolvedModel) -> tuple[ModelArtifact, EvaluationRecord | None]:
    """What the stable pods serve and its record; the served model itself without a candidate."""
    if model.stable is None:
        return model.model, model.evaluated
    return model.stable, model.stable_evaluated


def analysis_checks(model: ResolvedModel) -> tuple[str, ...]:
    """The checks the analysis runs; none (no analysis at all) when the spec gives nothing to
    judge the candidate by. Drift needs PSI thresholds and the candidate's baseline; class
    shares a classifier, a stable to compare with, and both versions counting predictions."""
    monitoring = model.monitoring
    slo = monitoring.slo
    found: list[str] = []
    if slo is not None and slo.availability is not None:
        found.append(AVAILABILITY)
    if slo is not None and slo.latency is not None:
        found.append(LATENCY)
    drift = monitoring.drift
    if drift is not None and drift.psi is not None and _binned(model.evaluated, model.model):
        found.append(DRIFT)
    stable, stable_record = stable_view(model)
    if (
        model.model.task == "classification"
        and model.stable is not None
        and _binned(model.evaluated, model.model, predictions=True)
        and _binned(stable_record, stable, predictions=True)
    ):
        found.append(CLASS_SHARES)
    return tuple(found)


def rollout(model: ResolvedModel, deployment: Obj) -> Obj:
    """The Rollout: the Deployment's metadata, selector and pod template, and a canary strategy
    of the spec's steps with the model's AnalysisTemplate running in the background."""
    canary = model.rollout.canary
    assert canary is not None
    spec = {key: value for key, value in deployment["spec"].items() if key != "strategy"}
    steps: list[Obj] = []
    for step in canary.steps:
        steps.append({"setWeight": step.weight})
        steps.append({"pause": {"duration": go_duration(step.pause)}})
    strategy: Obj = {
        "canaryService": service_name(model, CANARY),
        "stableService": service_name(model, STABLE),
        # As the Deployment's rolling update: never below the wanted replicas while pods change.
        "maxSurge": "25%",
        "maxUnavailable": 0,
        "steps": steps,
    }
    if analysis_checks(model):
        strategy["analysis"] = {"templates": [{"templateName": model.name}]}
    spec["strategy"] = {"canary": strategy}
    return {"apiVersion": API_VERSION, "kind": "Rollout", "metadata": deployment["metadata"], "spec": spec}


def role_service(model: ResolvedModel, service: Obj, role: str) -> Obj:
    """The Service Argo Rollouts points at the stable or the canary pods. It has no selector:
    the controller writes one (the pods' pod-template-hash), and a Service's selector is one
    atomic field, so a selector of ours would make every later server-side apply conflict
    with the controller. It has the serving port only: the model's ServiceMonitor selects
    Services by the model's labels, and a metrics port here would have every pod scraped once
    more, doubling every sum the rules and the analysis take."""
    service["metadata"]["name"] = service_name(model, role)
    del service["spec"]["selector"]
    service["spec"]["ports"] = [port for port in service["spec"]["ports"] if port["name"] == "http"]
    return service
