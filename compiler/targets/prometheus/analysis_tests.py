"""promtool tests of a canary's analysis queries: `analysis.test.yaml` beside the AnalysisTemplate.

Series of both versions are built from the parameters the queries were built from: a
candidate that serves like the stable passes every metric; a candidate worse on one check
fails exactly that metric and passes every other; too little candidate traffic gives no value
at all (no verdict). Each metric is evaluated as `query <= bool bound`, with the bound of its
success condition: 1 is a pass, 0 a failure. The stable serves nine times the candidate's
traffic, as at a 10% step, so a query that forgot to select the candidate's version would see
the candidate's faults diluted and fail its test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from compiler.metrics import contract
from compiler.metrics.contract import le_label
from compiler.metrics.drift import bin_labels, psi
from compiler.resolve.resolved import ResolvedModel
from compiler.spec.types import Duration
from compiler.targets.kubernetes import rollout as canary
from compiler.targets.prometheus.analysis import (
    AnalysisMetric,
    analysis_metrics,
    candidate_labels,
    stable_labels,
)
from compiler.targets.prometheus.drift_rules import FEATURES, Distribution, distributions
from compiler.targets.prometheus.drift_tests import shifted
from compiler.targets.prometheus.promql import matchers, number
from compiler.targets.prometheus.unittests import Case, ramp

STEPS_PER_WINDOW = 10
CANDIDATE_REQUESTS = 1000.0  # per window, or four times minRequests when that is more
STABLE_FACTOR = 9
PASSES, FAILS = 1, 0


@dataclass(frozen=True)
class Traffic:
    """What one version serves in each window: its requests, the shares of them that fail
    and that are slow, its inputs' shares per feature and its predictions' shares."""

    requests: float
    errors: float = 0.0
    slow: float = 0.0
    features: dict[str, tuple[float, ...]] = field(default_factory=dict)
    predictions: tuple[float, ...] = ()


@dataclass(frozen=True)
class Timeline:
    """Samples every tenth of the window, for two windows; the queries are evaluated at the end."""

    window: Duration

    @property
    def step(self) -> int:
        return max(1, self.window.milliseconds // STEPS_PER_WINDOW)

    @property
    def samples(self) -> int:
        return 2 * STEPS_PER_WINDOW + 1

    @property
    def end(self) -> str:
        return Duration.from_milliseconds(2 * STEPS_PER_WINDOW * self.step).text

    def counter(self, per_window: float) -> str:
        return ramp((self.samples, per_window * self.step / self.window.milliseconds))


def beyond(bound: float) -> float:
    """A share of requests above `bound` (a share below 1): twice it, or halfway to 1."""
    return min(2 * bound, (1 + bound) / 2)


def shifted_past(baseline: tuple[float, ...], threshold: float) -> tuple[float, ...] | None:
    """Shares whose PSI against `baseline` is well above `threshold`, or None when no shift of
    the traffic reaches it (every value in the least likely bin stays below)."""
    found = shifted(baseline, threshold * 1.5)
    if found is not None:
        return found
    corner = min(range(len(baseline)), key=lambda i: (baseline[i], i))
    largest = psi(baseline, [1.0 if i == corner else 0.0 for i in range(len(baseline))])
    return shifted(baseline, (threshold + largest) / 2) if largest > threshold else None


class _Series:
    """The input series of one case."""

    def __init__(self, model: ResolvedModel, timeline: Timeline) -> None:
        self.model = model
        self.timeline = timeline
        self.checks = canary.analysis_checks(model)
        self.found: list[dict[str, str]] = []

    def add(self, metric: str, labels: dict[str, str], per_window: float) -> None:
        self.found.append({"series": metric + matchers(labels), "values": self.timeline.counter(per_window)})

    def version(self, labels: dict[str, str], traffic: Traffic) -> None:
        n = traffic.requests
        requests = contract.REQUESTS.total
        self.add(requests, {**labels, "code": "200"}, n * (1 - traffic.errors))
        self.add(requests, {**labels, "code": "500"}, n * traffic.errors)
        if canary.LATENCY in self.checks:
            slo = self.model.monitoring.slo
            assert slo is not None and slo.latency is not None
            duration = contract.REQUEST_DURATION
            self.add(
                duration.bucket,
                {**labels, "le": le_label(slo.latency.threshold.seconds)},
                n * (1 - traffic.slow),
            )
            self.add(duration.bucket, {**labels, "le": "+Inf"}, n)
            self.add(duration.count, labels, n)
        for d in _features(self.model):
            assert d.feature is not None
            for b, share in zip(d.bins, traffic.features[d.feature], strict=True):
                self.add(FEATURES.counter, {**labels, "feature": d.feature, "bin": b}, n * share)
        for b, share in zip(_prediction_bins(self.model), traffic.predictions, strict=True):
            self.add(contract.PREDICTION_BINS.total, {**labels, "bin": b}, n * share)


def _features(model: ResolvedModel) -> list[Distribution]:
    """The features whose drift the analysis judges, with the candidate's baselines."""
    return (
        [d for d in distributions(model) if d.names is FEATURES]
        if canary.DRIFT in canary.analysis_checks(model)
        else []
    )


def _prediction_bins(model: ResolvedModel) -> list[str]:
    """The stable's prediction bins (a classifier's classes and "other"), which both versions
    count in the tests; none without the class-shares check."""
    if canary.CLASS_SHARES not in canary.analysis_checks(model):
        return []
    _, record = canary.stable_view(model)
    assert record is not None and record.predictions is not None
    return bin_labels(record.predictions.edges, record.predictions.categories)


def _as_usual(model: ResolvedModel, requests: float) -> Traffic:
    """Traffic as the baselines describe it, with half the error budgets spent."""
    slo = model.monitoring.slo
    record = model.evaluated
    features = {}
    for d in _features(model):
        assert record is not None and d.feature is not None
        features[d.feature] = tuple(record.baseline[d.feature].proportions)
    predictions: tuple[float, ...] = ()
    if _prediction_bins(model):
        _, stable_record = canary.stable_view(model)
        assert stable_record is not None and stable_record.predictions is not None
        predictions = tuple(stable_record.predictions.proportions)
    return Traffic(
        requests=requests,
        errors=slo.availability.budget / 2 if slo is not None and slo.availability is not None else 0.0,
        slow=slo.latency.target.budget / 2 if slo is not None and slo.latency is not None else 0.0,
        features=features,
        predictions=predictions,
    )


def _worse(model: ResolvedModel, metric: AnalysisMetric, usual: Traffic) -> Iterator[tuple[str, Traffic]]:
    """Candidate traffic worse than the bound on `metric` alone, with what makes it worse."""
    if metric.name == canary.AVAILABILITY:
        yield (
            f"{number(beyond(metric.bound) * 100)}% of its requests fail",
            replace(usual, errors=beyond(metric.bound)),
        )
    elif metric.name == canary.LATENCY:
        yield (
            f"{number(beyond(metric.bound) * 100)}% of its requests are slow",
            replace(usual, slow=beyond(metric.bound)),
        )
    elif metric.name == canary.DRIFT:
        for feature, baseline in usual.features.items():
            shares = shifted_past(baseline, metric.bound)
            if shares is not None:
                what = f"its inputs of {feature} shift to PSI {psi(baseline, shares):.4g}"
                yield what, replace(usual, features={**usual.features, feature: shares})
    elif metric.name == canary.CLASS_SHARES:
        shares = shifted_past(usual.predictions, metric.bound)
        if shares is not None:
            what = (
                f"its predicted classes shift to PSI {psi(usual.predictions, shares):.4g} from the stable's"
            )
            yield what, replace(usual, predictions=shares)


def _judged(metric: AnalysisMetric, end: str, outcome: int) -> dict[str, Any]:
    return {
        "expr": f"(\n{metric.query}\n) <= bool {number(metric.bound)}",
        "eval_time": end,
        "exp_samples": [{"labels": "{}", "value": outcome}],
    }


def analysis_tests(model: ResolvedModel) -> dict[str, Any]:
    """A promtool test file for the model's analysis queries (no rule files: queries only)."""
    metrics = analysis_metrics(model)
    canary_spec = model.rollout.canary
    assert canary_spec is not None
    window = canary.analysis_window(model)
    timeline = Timeline(window)
    minimum = canary_spec.analysis.minRequests
    requests = max(CANDIDATE_REQUESTS, 4.0 * minimum)
    usual = _as_usual(model, requests)
    stable = replace(usual, requests=STABLE_FACTOR * requests)
    separate = stable_labels(model) != candidate_labels(model)

    def case(name: str, candidate: Traffic, tests: list[dict[str, Any]]) -> Case:
        series = _Series(model, timeline)
        series.version(candidate_labels(model), candidate)
        if separate:  # without a candidate, the stable is the same series
            series.version(stable_labels(model), stable)
        return {
            "name": name,
            "interval": Duration.from_milliseconds(timeline.step).text,
            "input_series": series.found,
            "promql_expr_test": tests,
        }

    end = timeline.end
    cases = [
        case(
            "every metric passes: the candidate serves like the stable",
            usual,
            [_judged(m, end, PASSES) for m in metrics],
        )
    ]
    for metric in metrics:
        for what, traffic in _worse(model, metric, usual):
            cases.append(
                case(
                    f"{metric.name} fails alone: {what}",
                    traffic,
                    [_judged(m, end, FAILS if m is metric else PASSES) for m in metrics],
                )
            )
    few = minimum / 4
    cases.append(
        case(
            f"no verdict: {number(few)} candidate requests in {window.text}, fewer than {minimum}",
            replace(usual, requests=few),
            [{"expr": m.query, "eval_time": end, "exp_samples": []} for m in metrics],
        )
    )
    return {"rule_files": [], "tests": cases}
