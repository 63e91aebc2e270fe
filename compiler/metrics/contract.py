"""Names, types, labels and buckets of every series the serving runtime exports.

The runtime registers its metrics from here, and the rule and dashboard renderers take
every series name from here, so the two cannot drift apart. A test scrapes a live runtime
and checks that every series the rules and dashboards use really exists.

Labels the runtime sets itself are listed per metric. `namespace`, `pod` and `job` are
added by the scrape (Prometheus Operator's ServiceMonitor, or static labels without it);
the runtime never sets them, so they cannot clash with the target's labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    COUNTER = "counter"
    HISTOGRAM = "histogram"
    GAUGE = "gauge"
    INFO = "info"


@dataclass(frozen=True)
class Metric:
    """One metric family. `name` is what prometheus-client is given; `series` what it exports."""

    name: str
    kind: Kind
    documentation: str
    labels: tuple[str, ...]

    @property
    def series(self) -> tuple[str, ...]:
        if self.kind is Kind.COUNTER:
            return (f"{self.name}_total",)
        if self.kind is Kind.HISTOGRAM:
            return (f"{self.name}_bucket", f"{self.name}_count", f"{self.name}_sum")
        if self.kind is Kind.INFO:
            return (f"{self.name}_info",)
        return (self.name,)

    @property
    def total(self) -> str:
        assert self.kind is Kind.COUNTER
        return f"{self.name}_total"

    @property
    def bucket(self) -> str:
        assert self.kind is Kind.HISTOGRAM
        return f"{self.name}_bucket"

    @property
    def count(self) -> str:
        assert self.kind is Kind.HISTOGRAM
        return f"{self.name}_count"

    @property
    def info(self) -> str:
        assert self.kind is Kind.INFO
        return f"{self.name}_info"


PREFIX = "modelops"
MODEL_LABELS = ("model", "version")

REQUESTS = Metric(
    f"{PREFIX}_requests",
    Kind.COUNTER,
    "Inference requests handled, by HTTP status code.",
    (*MODEL_LABELS, "code"),
)
REQUEST_DURATION = Metric(
    f"{PREFIX}_request_duration_seconds",
    Kind.HISTOGRAM,
    "Time to answer an inference request, in seconds.",
    MODEL_LABELS,
)
PREDICTIONS = Metric(
    f"{PREFIX}_predictions",
    Kind.COUNTER,
    "Predictions made by a classifier, by predicted class.",
    (*MODEL_LABELS, "class"),
)
PREDICTION_VALUE = Metric(
    f"{PREFIX}_prediction_value",
    Kind.HISTOGRAM,
    "Values predicted by a regressor.",
    MODEL_LABELS,
)
FEATURE_DRIFT = Metric(
    f"{PREFIX}_feature_drift_psi",
    Kind.GAUGE,
    "Population stability index of each input feature over the recent window, against the training baseline.",
    (*MODEL_LABELS, "feature"),
)
INVALID_INPUTS = Metric(
    f"{PREFIX}_invalid_inputs",
    Kind.COUNTER,
    "Inference requests rejected because the input did not match the feature schema.",
    (*MODEL_LABELS, "reason"),
)
MODEL_INFO = Metric(
    f"{PREFIX}_model",
    Kind.INFO,
    "The model this runtime serves.",
    ("model", "version", "framework", "task"),
)

ALL_METRICS: tuple[Metric, ...] = (
    REQUESTS,
    REQUEST_DURATION,
    PREDICTIONS,
    PREDICTION_VALUE,
    FEATURE_DRIFT,
    INVALID_INPUTS,
    MODEL_INFO,
)

# Series names recording rules produce; dashboards and alerts may use these too.
SLI_ERROR_RATIO = "slo:sli_error:ratio_rate{window}"
SLO_PERIOD_ERROR_RATIO = "slo:period_error:ratio"
ERROR_BUDGET_REMAINING = "slo:error_budget:remaining"
SLO_OBJECTIVE = "slo:objective:ratio"


def sli_error_ratio(window: str) -> str:
    return SLI_ERROR_RATIO.format(window=window)


def series_names() -> frozenset[str]:
    """Every raw series name the runtime exports."""
    return frozenset(name for metric in ALL_METRICS for name in metric.series)


def recorded_names(windows: tuple[str, ...]) -> frozenset[str]:
    """Every series name our recording rules produce, for the given SLI windows."""
    return frozenset(
        {sli_error_ratio(w) for w in windows}
        | {SLO_PERIOD_ERROR_RATIO, ERROR_BUDGET_REMAINING, SLO_OBJECTIVE}
    )


# Prometheus client defaults, stretched a little at the slow end for model inference.
DEFAULT_LATENCY_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
PREDICTION_VALUE_BUCKETS: tuple[float, ...] = (0.0, 1.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 1000.0)
# Pre-created so rates exist before errors do; 499: the client left before the answer.
STATUS_CODES = ("200", "400", "404", "413", "499", "500", "503")


def latency_buckets(slo_threshold_seconds: float | None) -> tuple[float, ...]:
    """The latency histogram's bucket bounds, always including the SLO threshold.

    A latency SLI counts requests at or under the threshold with the `le` bucket equal to it;
    if no bucket sits exactly there, the SLI can only be approximated.
    """
    bounds = set(DEFAULT_LATENCY_BUCKETS)
    if slo_threshold_seconds is not None:
        bounds.add(round(slo_threshold_seconds, 6))
    return tuple(sorted(bounds))


def le_label(bound: float) -> str:
    """The `le` label value prometheus-client writes for a bucket bound (Go float format).

    Below 1e6 that is Python's repr of the float (the tests check it against prometheus-client
    for any float); only other bounds import prometheus-client, whose collectors and
    exposition server take a twentieth of an incremental compile to import.
    """
    value = float(bound)
    if math.isfinite(value) and value < 1e6:
        return repr(value)
    from prometheus_client.utils import floatToGoString

    text: str = floatToGoString(bound)  # type: ignore[no-untyped-call]
    return text
