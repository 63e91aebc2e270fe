"""The runtime's Prometheus metrics, registered from the metrics contract and nowhere else."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from compiler.metrics import contract
from compiler.serving.config import RuntimeConfig

INVALID_REASONS = ("json", "schema", "type", "range", "size")
_CLASSES: dict[contract.Kind, type[Counter] | type[Gauge] | type[Histogram]] = {
    contract.Kind.COUNTER: Counter,
    contract.Kind.GAUGE: Gauge,
    contract.Kind.HISTOGRAM: Histogram,
}


def _register(metric: contract.Metric, registry: CollectorRegistry, **options: Any) -> Any:
    """The prometheus-client object for a contract metric: its kind decides the class."""
    return _CLASSES[metric.kind](
        metric.name, metric.documentation, metric.labels, registry=registry, **options
    )


class RuntimeMetrics:
    def __init__(self, config: RuntimeConfig, registry: CollectorRegistry) -> None:
        model = config.model
        self.task = model.task
        self._ids = {"model": model.name, "version": model.version}
        self.requests = _register(contract.REQUESTS, registry)
        self.duration = _register(contract.REQUEST_DURATION, registry, buckets=config.metrics.latencyBuckets)
        self.invalid = _register(contract.INVALID_INPUTS, registry)
        self.drift = _register(contract.FEATURE_DRIFT, registry)
        self.predictions = _register(contract.PREDICTIONS, registry)
        self.prediction_value = _register(
            contract.PREDICTION_VALUE, registry, buckets=contract.PREDICTION_VALUE_BUCKETS
        )
        self.info = Info(contract.MODEL_INFO.name, contract.MODEL_INFO.documentation, registry=registry)
        self.info.info(
            {"model": model.name, "version": model.version, "framework": model.framework, "task": model.task}
        )
        # Create every series up front, so rates exist (as zero) before the first error does.
        for code in contract.STATUS_CODES:
            self.requests.labels(**self._ids, code=code)
        for reason in INVALID_REASONS:
            self.invalid.labels(**self._ids, reason=reason)
        self.duration.labels(*self._ids.values())
        if self.task == "regression":
            self.prediction_value.labels(*self._ids.values())

    def known_classes(self, classes: Iterable[object]) -> None:
        if self.task == "classification":
            for value in classes:
                self.predictions.labels(**self._ids, **{"class": str(value)})

    def request(self, code: int, seconds: float) -> None:
        self.requests.labels(**self._ids, code=str(code)).inc()
        self.duration.labels(*self._ids.values()).observe(seconds)

    def invalid_input(self, reason: str) -> None:
        self.invalid.labels(**self._ids, reason=reason).inc()

    def predicted(self, values: list[object]) -> None:
        if self.task == "classification":
            counts: dict[str, int] = {}
            for value in values:
                counts[str(value)] = counts.get(str(value), 0) + 1
            for label, count in counts.items():
                self.predictions.labels(**self._ids, **{"class": label}).inc(count)
        else:
            histogram = self.prediction_value.labels(*self._ids.values())
            for value in values:
                histogram.observe(float(value))  # type: ignore[arg-type]

    def drift_index(self, feature: str, value: float) -> None:
        self.drift.labels(**self._ids, feature=feature).set(value)
