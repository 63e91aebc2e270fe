"""The canary's AnalysisTemplate (Argo Rollouts): Prometheus queries generated from the metrics
contract and the spec, judging the candidate by its own SLOs, its inputs' drift and, for
classifiers, its predicted-class shares against the stable's.

The runtime labels every series with the version it serves, so each query selects the
candidate by `version` (and the stable by its own). Each returns one sample without labels,
or nothing when the candidate served fewer than `minRequests` requests in the window: then
neither condition holds and the measurement is inconclusive, no verdict on five requests.
Argo Rollouts pauses the rollout on an inconclusive analysis, for a person to decide. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compiler.metrics import contract
from compiler.metrics.contract import le_label
from compiler.metrics.drift import EMPTY_BIN_SHARE
from compiler.resolve.resolved import ResolvedModel
from compiler.stamp import Stamp
from compiler.targets.kubernetes import rollout as canary
from compiler.targets.kubernetes.labels import object_metadata
from compiler.targets.prometheus.drift_rules import FEATURES, distributions, psi_expr
from compiler.targets.prometheus.promql import number, selector, string_literal

# Without a drift section, the class shares may move this far (PSI) from the stable's: the
# usual boundary between a stable distribution and a moderate shift.
CLASS_SHARES_PSI = 0.1


@dataclass(frozen=True)
class AnalysisMetric:
    """One measurement: a query giving one value that passes when it is at most `bound`."""

    name: str
    query: str
    bound: float

    @property
    def success_condition(self) -> str:
        return f"len(result) > 0 && result[0] <= {number(self.bound)}"

    @property
    def failure_condition(self) -> str:
        return f"len(result) > 0 && result[0] > {number(self.bound)}"


def candidate_labels(model: ResolvedModel) -> dict[str, str]:
    return {"model": model.name, "namespace": model.namespace, "version": model.model.version.text}


def stable_labels(model: ResolvedModel) -> dict[str, str]:
    stable, _ = canary.stable_view(model)
    return {**candidate_labels(model), "version": stable.version.text}


def _increase(metric: str, labels: dict[str, str], window: str, **extra: str) -> str:
    return f"increase({selector(metric, labels, **extra)}[{window}])"


def _guarded(value: str, model: ResolvedModel, window: str) -> str:
    """`value`, or nothing while the candidate served fewer than minRequests requests."""
    canary_spec = model.rollout.canary
    assert canary_spec is not None
    requests = _increase(contract.REQUESTS.total, candidate_labels(model), window)
    return f"{value}\nand on ()\n(sum({requests}) >= {canary_spec.analysis.minRequests})"


def _shares(metric: str, labels: dict[str, str], window: str, by: tuple[str, ...]) -> str:
    """Each bin's share of the window's counts (per `by`), floored as PSI floors empty bins."""
    counts = _increase(metric, labels, window)
    per_bin = ", ".join((*by, "bin"))
    total = f"sum by ({', '.join(by)}) " if by else "sum"
    return (
        f"clamp_min(sum by ({per_bin}) ({counts}) / on ({', '.join(by)}) group_left {total}({counts}), "
        f"{number(EMPTY_BIN_SHARE)})"
    )


def _label_replace(value: str, label: str, text: str) -> str:
    replacement = string_literal(text.replace("$", "$$"))  # `$` would start a group reference
    return f'label_replace({value}, "{label}", {replacement}, "", "")'


def _baseline(feature: str, bins: tuple[str, ...], shares: tuple[float, ...]) -> str:
    """A feature's baseline shares as a vector labelled by feature and bin."""
    vectors = "\n    or ".join(
        _label_replace(f"vector({number(share)})", "bin", b) for b, share in zip(bins, shares, strict=True)
    )
    return _label_replace(f"(\n    {vectors}\n  )", "feature", feature)


def _availability(model: ResolvedModel, window: str) -> AnalysisMetric:
    labels = candidate_labels(model)
    errors = _increase(contract.REQUESTS.total, labels, window, code='=~"5.."')
    total = _increase(contract.REQUESTS.total, labels, window)
    slo = model.monitoring.slo
    assert slo is not None and slo.availability is not None
    ratio = f"(sum({errors}) or vector(0))\n/\nsum({total})"
    return AnalysisMetric(canary.AVAILABILITY, _guarded(ratio, model, window), slo.availability.budget)


def _latency(model: ResolvedModel, window: str) -> AnalysisMetric:
    labels = candidate_labels(model)
    slo = model.monitoring.slo
    assert slo is not None and slo.latency is not None
    duration = contract.REQUEST_DURATION
    fast = _increase(duration.bucket, labels, window, le=f'="{le_label(slo.latency.threshold.seconds)}"')
    total = _increase(duration.count, labels, window)
    slow = f"1 - (\n  sum({fast})\n  /\n  sum({total})\n)"
    return AnalysisMetric(canary.LATENCY, _guarded(slow, model, window), slo.latency.target.budget)


def _drift(model: ResolvedModel, window: str) -> AnalysisMetric:
    """The largest PSI of a feature's live shares against the baseline of the candidate's record."""
    drift = model.monitoring.drift
    assert drift is not None and drift.psi is not None
    baselines = [d for d in distributions(model) if d.names is FEATURES]
    expected = "\n  or ".join(_baseline(d.feature or "", d.bins, d.shares) for d in baselines)
    live = _shares(FEATURES.counter, candidate_labels(model), window, FEATURES.by)
    psi = psi_expr("sum by (feature) ", live, f"(\n  {expected}\n)")
    return AnalysisMetric(canary.DRIFT, _guarded(f"max(\n{psi}\n)", model, window), drift.psi.critical)


def _class_shares(model: ResolvedModel, window: str) -> AnalysisMetric:
    """PSI of the candidate's predicted-class shares against the stable's in the same window."""
    counter = contract.PREDICTION_BINS.total
    live = _shares(counter, candidate_labels(model), window, ())
    stable = _shares(counter, stable_labels(model), window, ())
    drift = model.monitoring.drift
    bound = drift.psi.warning if drift is not None and drift.psi is not None else CLASS_SHARES_PSI
    return AnalysisMetric(canary.CLASS_SHARES, _guarded(psi_expr("sum ", live, stable), model, window), bound)


_QUERIES = {
    canary.AVAILABILITY: _availability,
    canary.LATENCY: _latency,
    canary.DRIFT: _drift,
    canary.CLASS_SHARES: _class_shares,
}


def analysis_metrics(model: ResolvedModel) -> list[AnalysisMetric]:
    """The measurements of the checks that apply (see rollout.analysis_checks)."""
    window = canary.analysis_window(model).text
    return [_QUERIES[check](model, window) for check in canary.analysis_checks(model)]


def analysis_template(model: ResolvedModel, stamp: Stamp) -> dict[str, Any] | None:
    """The AnalysisTemplate the Rollout runs in the background; None unless the model is a
    canary with something to judge. The first measurement waits one window, so that it sees
    a window of the candidate's traffic."""
    if not canary.is_canary(model):
        return None
    metrics = analysis_metrics(model)
    if not metrics:
        return None
    canary_spec = model.rollout.canary
    assert canary_spec is not None
    analysis = canary_spec.analysis
    return {
        "apiVersion": canary.API_VERSION,
        "kind": "AnalysisTemplate",
        "metadata": object_metadata(model, model.name, stamp),
        "spec": {
            "metrics": [
                {
                    "name": metric.name,
                    "interval": canary.go_duration(analysis.interval),
                    "initialDelay": canary.go_duration(canary.analysis_window(model)),
                    "failureLimit": analysis.failureLimit,
                    "successCondition": metric.success_condition,
                    "failureCondition": metric.failure_condition,
                    "provider": {"prometheus": {"address": model.prometheus.address, "query": metric.query}},
                }
                for metric in metrics
            ]
        },
    }
