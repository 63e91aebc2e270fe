"""ResolvedModel -> the runtime's configuration (the schema lives with the runtime)."""

from __future__ import annotations

from compiler.metrics.contract import latency_buckets
from compiler.resolve.resolved import ResolvedModel
from compiler.serving.config import (
    RuntimeConfig,
    RuntimeDrift,
    RuntimeFeature,
    RuntimeFeatureBaseline,
    RuntimeFeedback,
    RuntimeMetrics,
    RuntimeModel,
    RuntimeServer,
    RuntimeShadow,
    difference_buckets,
    max_body_bytes,
)
from compiler.spec.records import FeatureBaseline


def runtime_config_for(model: ResolvedModel, memory_limit_bytes: int) -> RuntimeConfig:
    """The runtime's configuration; `memory_limit_bytes` is the pod's memory limit.

    Alert thresholds (drift PSI levels, the SLO's threshold and objectives) stay out: Prometheus
    evaluates them, the runtime never reads them, and changing one must not restart the pods.
    The latency threshold reaches the runtime only as one of the histogram's buckets.
    """
    slo = model.monitoring.slo
    threshold = slo.latency.threshold.seconds if slo is not None and slo.latency is not None else None
    return RuntimeConfig(
        environment=model.environment,
        namespace=model.namespace,
        model=RuntimeModel(
            name=model.name,
            version=model.model.version.text,
            task=model.model.task,
            framework=model.model.framework,
            uri=model.model.uri.text,
            sha256=model.model.sha256,
            features=[RuntimeFeature(name=f.name, type=f.type) for f in model.model.features],
        ),
        server=RuntimeServer(
            port=model.serving.port,
            metricsPort=model.serving.metricsPort,
            maxBodyBytes=max_body_bytes(memory_limit_bytes),
        ),
        metrics=RuntimeMetrics(latencyBuckets=list(latency_buckets(threshold))),
        drift=_drift(model),
        feedback=RuntimeFeedback(
            maxEntries=model.monitoring.feedback.maxEntries,
            ttlSeconds=model.monitoring.feedback.ttl.milliseconds / 1000,
        ),
        shadow=_shadow(model),
    )


def _shadow(model: ResolvedModel) -> RuntimeShadow | None:
    """The candidate the runtime scores off the response path (strategy shadow with a candidate).

    maxDisagreement and minComparisons stay out: only the alert rule reads them. A regressor's
    tolerance reaches the runtime as what agrees, and as one of the difference histogram's buckets.
    """
    candidate = model.shadow
    if candidate is None or candidate.sha256 is None:
        return None
    spec = model.rollout.shadow
    tolerance = spec.tolerance if model.model.task == "regression" else None
    return RuntimeShadow(
        version=candidate.version.text,
        uri=candidate.uri.text,
        sha256=candidate.sha256,
        queueSize=spec.queueSize,
        tolerance=tolerance,
        differenceBuckets=difference_buckets(tolerance) if tolerance is not None else [],
    )


def _drift(model: ResolvedModel) -> RuntimeDrift | None:
    """The baseline `modelops evaluate` recorded, for the features the spec declares."""
    record = model.evaluated
    names = [f.name for f in model.model.features]
    if record is None or not names or any(name not in record.baseline for name in names):
        return None
    return RuntimeDrift(
        baseline={name: _baseline(record.baseline[name]) for name in names},
        predictions=_baseline(record.predictions) if record.predictions is not None else None,
    )


def _baseline(baseline: FeatureBaseline) -> RuntimeFeatureBaseline:
    return RuntimeFeatureBaseline(
        edges=baseline.edges, proportions=baseline.proportions, categories=baseline.categories
    )
