"""The runtime's Prometheus metrics, registered from the metrics contract and nowhere else."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from compiler.metrics import contract
from compiler.serving.config import RuntimeConfig, RuntimeModel, RuntimeShadow, difference_buckets
from compiler.serving.drift import Bins

INVALID_REASONS = ("json", "schema", "type", "range", "size", "timeout")
SHADOW_OUTCOMES = ("agree", "disagree", "error")
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
        self.feature_bins = _register(contract.FEATURE_BINS, registry)
        self.prediction_bins = _register(contract.PREDICTION_BINS, registry)
        self.feedback_requests = _register(contract.FEEDBACK_REQUESTS, registry)
        self.feedback_labels = _register(contract.FEEDBACK_LABELS, registry)
        self.feedback_correct = _register(contract.FEEDBACK_CORRECT, registry)
        self.feedback_predicted = _register(contract.FEEDBACK_PREDICTED, registry)
        self.feedback_scored = _register(contract.FEEDBACK_SCORED, registry)
        self.absolute_error = _register(contract.FEEDBACK_ABSOLUTE_ERROR, registry)
        self.squared_error = _register(contract.FEEDBACK_SQUARED_ERROR, registry)
        self.unmatched = _register(contract.FEEDBACK_UNMATCHED, registry)
        self.dropped = _register(contract.FEEDBACK_DROPPED, registry)
        self.pending = _register(contract.FEEDBACK_PENDING, registry)
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
        for code in contract.STATUS_CODES:
            self.feedback_requests.labels(**self._ids, code=code)
        for reason in contract.UNMATCHED_REASONS:
            self.unmatched.labels(**self._ids, reason=reason)
        self.dropped.labels(*self._ids.values())
        self.pending.labels(*self._ids.values())
        if self.task == "regression":
            self.prediction_value.labels(*self._ids.values())
            for counter in (self.feedback_scored, self.absolute_error, self.squared_error):
                counter.labels(*self._ids.values())
        else:
            self._classes([contract.OTHER_BIN])
        drift = config.drift
        if drift is not None:  # every bin from the start: a share is 0 before it is missing
            for feature, baseline in drift.baseline.items():
                for label in Bins(baseline).labels:
                    self.feature_bins.labels(**self._ids, feature=feature, bin=label)
            if drift.predictions is not None:
                for label in Bins(drift.predictions).labels:
                    self.prediction_bins.labels(**self._ids, bin=label)
        self.shadow = ShadowMetrics(model, config.shadow, registry) if config.shadow is not None else None

    def _classes(self, labels: Iterable[str]) -> None:
        for label in labels:
            for counter in (self.feedback_labels, self.feedback_correct, self.feedback_predicted):
                counter.labels(**self._ids, **{"class": label})

    def known_classes(self, classes: Iterable[object]) -> None:
        if self.task == "classification":
            for value in classes:
                self.predictions.labels(**self._ids, **{"class": str(value)})
            self._classes(str(value) for value in classes)

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

    def binned(self, feature: str, counts: dict[str, int]) -> None:
        for label, count in counts.items():
            self.feature_bins.labels(**self._ids, feature=feature, bin=label).inc(count)

    def predictions_binned(self, counts: dict[str, int]) -> None:
        for label, count in counts.items():
            self.prediction_bins.labels(**self._ids, bin=label).inc(count)

    def feedback_request(self, code: int) -> None:
        self.feedback_requests.labels(**self._ids, code=str(code)).inc()

    def classified(self, judged: list[tuple[str, str]]) -> None:
        """(true class, predicted class) of labelled predictions; true "other" is a new class."""
        for (true, predicted), count in Tally(judged).items():
            self.feedback_labels.labels(**self._ids, **{"class": true}).inc(count)
            self.feedback_predicted.labels(**self._ids, **{"class": predicted}).inc(count)
            if true == predicted:
                self.feedback_correct.labels(**self._ids, **{"class": true}).inc(count)

    def regressed(self, errors: list[float]) -> None:
        ids = self._ids.values()
        self.feedback_scored.labels(*ids).inc(len(errors))
        self.absolute_error.labels(*ids).inc(sum(abs(e) for e in errors))
        self.squared_error.labels(*ids).inc(sum(e * e for e in errors))

    def feedback_unmatched(self, reason: str) -> None:
        self.unmatched.labels(**self._ids, reason=reason).inc()

    def held(self, pending: int, dropped: int) -> None:
        self.pending.labels(*self._ids.values()).set(pending)
        if dropped:
            self.dropped.labels(*self._ids.values()).inc(dropped)


class ShadowMetrics:
    """The candidate's comparisons with the stable model. Registered only when the config has a
    shadow, so a runtime without one exports exactly the series it did before shadows existed."""

    def __init__(self, model: RuntimeModel, shadow: RuntimeShadow, registry: CollectorRegistry) -> None:
        ids = {"model": model.name, "version": model.version, "candidate": shadow.version}
        comparisons = _register(contract.SHADOW_COMPARISONS, registry)
        self._outcomes = {outcome: comparisons.labels(**ids, outcome=outcome) for outcome in SHADOW_OUTCOMES}
        self._dropped = _register(contract.SHADOW_DROPPED, registry).labels(**ids)
        self._difference = None
        if model.task == "regression":
            buckets = shadow.differenceBuckets or difference_buckets(shadow.tolerance or 0.0)
            self._difference = _register(contract.SHADOW_DIFFERENCE, registry, buckets=buckets).labels(**ids)

    def compared(self, outcome: str, rows: int) -> None:
        if rows:
            self._outcomes[outcome].inc(rows)

    def differences(self, values: Iterable[float]) -> None:
        if self._difference is not None:
            for value in values:
                self._difference.observe(value)

    def dropped(self) -> None:
        self._dropped.inc()
