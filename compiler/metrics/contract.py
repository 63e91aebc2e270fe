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
        return tuple(f"{self.name}{suffix}" for suffix in _SUFFIXES[self.kind])

    def _one(self, suffix: str) -> str:
        """One series of the family, which must be one this kind exports."""
        assert suffix in _SUFFIXES[self.kind], (self.name, suffix)
        return f"{self.name}{suffix}"

    @property
    def total(self) -> str:
        return self._one("_total")

    @property
    def bucket(self) -> str:
        return self._one("_bucket")

    @property
    def count(self) -> str:
        return self._one("_count")

    @property
    def info(self) -> str:
        return self._one("_info")


# The series prometheus-client exports for a family of each kind: its name and these suffixes.
_SUFFIXES = {
    Kind.COUNTER: ("_total",),
    Kind.HISTOGRAM: ("_bucket", "_count", "_sum"),
    Kind.GAUGE: ("",),
    Kind.INFO: ("_info",),
}

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
FEATURE_BINS = Metric(
    f"{PREFIX}_feature_bin",
    Kind.COUNTER,
    "Input values seen, by feature and by bin of the evaluation baseline (categorical: value or 'other').",
    (*MODEL_LABELS, "feature", "bin"),
)
PREDICTION_BINS = Metric(
    f"{PREFIX}_prediction_bin",
    Kind.COUNTER,
    "Predictions made, by bin of the holdout's predictions (classes and 'other' for a classifier).",
    (*MODEL_LABELS, "bin"),
)
FEEDBACK_REQUESTS = Metric(
    f"{PREFIX}_feedback_requests",
    Kind.COUNTER,
    "Feedback requests (true labels for earlier predictions) handled, by HTTP status code.",
    (*MODEL_LABELS, "code"),
)
FEEDBACK_LABELS = Metric(
    f"{PREFIX}_feedback_labels",
    Kind.COUNTER,
    "Labelled predictions of a classifier, by true class ('other' for a class the model does not know).",
    (*MODEL_LABELS, "class"),
)
FEEDBACK_CORRECT = Metric(
    f"{PREFIX}_feedback_correct",
    Kind.COUNTER,
    "Labelled predictions of a classifier that were right, by class.",
    (*MODEL_LABELS, "class"),
)
FEEDBACK_PREDICTED = Metric(
    f"{PREFIX}_feedback_predicted",
    Kind.COUNTER,
    "Labelled predictions of a classifier, by predicted class (the denominator of precision).",
    (*MODEL_LABELS, "class"),
)
FEEDBACK_SCORED = Metric(
    f"{PREFIX}_feedback_scored",
    Kind.COUNTER,
    "Labelled predictions of a regressor.",
    MODEL_LABELS,
)
FEEDBACK_ABSOLUTE_ERROR = Metric(
    f"{PREFIX}_feedback_absolute_error",
    Kind.COUNTER,
    "Sum of the absolute errors of a regressor's labelled predictions.",
    MODEL_LABELS,
)
FEEDBACK_SQUARED_ERROR = Metric(
    f"{PREFIX}_feedback_squared_error",
    Kind.COUNTER,
    "Sum of the squared errors of a regressor's labelled predictions.",
    MODEL_LABELS,
)
FEEDBACK_UNMATCHED = Metric(
    f"{PREFIX}_feedback_unmatched",
    Kind.COUNTER,
    "Feedback for an id this pod does not hold (unknown) or holds past its time to live (expired).",
    (*MODEL_LABELS, "reason"),
)
FEEDBACK_DROPPED = Metric(
    f"{PREFIX}_feedback_dropped",
    Kind.COUNTER,
    "Predictions awaiting a label dropped, unexpired, to make room (feedback.maxEntries).",
    MODEL_LABELS,
)
FEEDBACK_PENDING = Metric(
    f"{PREFIX}_feedback_pending",
    Kind.GAUGE,
    "Predictions held awaiting a label.",
    MODEL_LABELS,
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

# Shadow traffic (rollout.strategy: shadow): the candidate scores a copy of each request off the
# response path. `version` is the stable model's version (it answered), `candidate` the shadow's.
SHADOW_LABELS = (*MODEL_LABELS, "candidate")
SHADOW_COMPARISONS = Metric(
    f"{PREFIX}_shadow_comparisons",
    Kind.COUNTER,
    "Rows scored by both the stable model and the shadow candidate, by outcome: agree, disagree "
    "(classifiers: another class; regressors: an absolute difference above the spec's tolerance), "
    "or error (the candidate failed).",
    (*SHADOW_LABELS, "outcome"),
)
SHADOW_DIFFERENCE = Metric(
    f"{PREFIX}_shadow_difference",
    Kind.HISTOGRAM,
    "Absolute difference between the candidate's and the stable model's predictions (regressors).",
    SHADOW_LABELS,
)
SHADOW_DROPPED = Metric(
    f"{PREFIX}_shadow_dropped",
    Kind.COUNTER,
    "Requests not shadowed because the shadow queue was full (the request itself was answered).",
    SHADOW_LABELS,
)

ALL_METRICS: tuple[Metric, ...] = (
    REQUESTS,
    REQUEST_DURATION,
    PREDICTIONS,
    PREDICTION_VALUE,
    FEATURE_BINS,
    PREDICTION_BINS,
    INVALID_INPUTS,
    MODEL_INFO,
    FEEDBACK_REQUESTS,
    FEEDBACK_LABELS,
    FEEDBACK_CORRECT,
    FEEDBACK_PREDICTED,
    FEEDBACK_SCORED,
    FEEDBACK_ABSOLUTE_ERROR,
    FEEDBACK_SQUARED_ERROR,
    FEEDBACK_UNMATCHED,
    FEEDBACK_DROPPED,
    FEEDBACK_PENDING,
    SHADOW_COMPARISONS,
    SHADOW_DIFFERENCE,
    SHADOW_DROPPED,
)
OTHER_BIN = "other"  # the bin of a categorical value (or class) the baseline never saw
UNMATCHED_REASONS = ("unknown", "expired")

# Series names recording rules produce; dashboards and alerts may use these too.
SLI_ERROR_RATIO = "slo:sli_error:ratio_rate{window}"
SLO_PERIOD_ERROR_RATIO = "slo:period_error:ratio"
ERROR_BUDGET_REMAINING = "slo:error_budget:remaining"
SLO_OBJECTIVE = "slo:objective:ratio"


@dataclass(frozen=True)
class DriftSeries:
    """The series recorded for one kind of distribution: inputs by `feature`, or predictions.

    Counts per bin over `drift.window` summed across pods, their shares, the baseline shares,
    the sample guard and the guarded PSI.
    """

    counter: str  # what the runtime counts per bin
    increase: str
    samples: str
    share: str
    baseline: str
    min_samples: str
    psi: str
    by: tuple[str, ...]  # labels that tell one distribution's bins apart, besides `bin`

    @classmethod
    def of(cls, stem: str, counter: Metric, by: tuple[str, ...]) -> DriftSeries:
        """The recording-rule names of `<stem>` bins: modelops:<stem>_bin:share and so on."""
        return cls(
            counter.total,
            f"{PREFIX}:{stem}_bin:increase",
            f"{PREFIX}:{stem}_samples:increase",
            f"{PREFIX}:{stem}_bin:share",
            f"{PREFIX}:{stem}_bin:baseline_share",
            f"{PREFIX}:{stem}_drift:min_samples",
            f"{PREFIX}:{stem}_drift:psi",
            by,
        )

    @property
    def recorded(self) -> tuple[str, ...]:
        return (self.increase, self.samples, self.share, self.baseline, self.min_samples, self.psi)


FEATURE_DRIFT = DriftSeries.of("feature", FEATURE_BINS, ("feature",))
PREDICTION_DRIFT = DriftSeries.of("prediction", PREDICTION_BINS, ())
DRIFT_RECORDS = (*FEATURE_DRIFT.recorded, *PREDICTION_DRIFT.recorded)
# Shadow: compared rows in the window by outcome, summed across pods, and the guarded share of
# them that did not agree (model, namespace, environment).
SHADOW_COMPARISONS_INCREASE = "modelops:shadow_comparisons:increase"
SHADOW_DISAGREEMENT_RATIO = "modelops:shadow_disagreement:ratio"
SHADOW_RECORDS = (SHADOW_COMPARISONS_INCREASE, SHADOW_DISAGREEMENT_RATIO)


def sli_error_ratio(window: str) -> str:
    return SLI_ERROR_RATIO.format(window=window)


QUALITY_EVENTS = "slo:sli_events:increase{window}"  # labelled predictions in a quality SLI window


def quality_events(window: str) -> str:
    return QUALITY_EVENTS.format(window=window)


def series_names() -> frozenset[str]:
    """Every raw series name the runtime exports."""
    return frozenset(name for metric in ALL_METRICS for name in metric.series)


def recorded_names(windows: tuple[str, ...]) -> frozenset[str]:
    """Every series name our recording rules produce, for the given SLI windows."""
    return frozenset(
        {sli_error_ratio(w) for w in windows}
        | {quality_events(w) for w in windows}
        | {SLO_PERIOD_ERROR_RATIO, ERROR_BUDGET_REMAINING, SLO_OBJECTIVE}
        | set(DRIFT_RECORDS)
        | set(SHADOW_RECORDS)
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
