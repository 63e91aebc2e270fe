"""promtool scenarios for the quality SLO alerts: labelled predictions with a constant share
of bad ones (or a constant error) burn the budget or stay within it, and a burn seen in too
few labels (below `minFeedback`) stays quiet.

As in the availability and latency scenarios, a constant error makes every window read the
same, so one hour of input decides each case and promtool stays quick.
"""

from __future__ import annotations

from typing import Any

from compiler.metrics import contract
from compiler.resolve.resolved import ResolvedModel
from compiler.targets.prometheus.promql import matchers, number
from compiler.targets.prometheus.quality_rules import QualitySlo, labels
from compiler.targets.prometheus.rules import AlertRule
from compiler.targets.prometheus.unittests import Case, _case, _expected, ramp

MINUTES = 60


def _series(model: ResolvedModel, slo: QualitySlo, per_minute: float, error: float) -> list[dict[str, str]]:
    """Labels arriving at `per_minute`, with `error` as the window's error measure."""
    base = {"model": model.name, "namespace": model.namespace, "version": model.model.version.text}

    def counter(metric: str, rate: float, **extra: str) -> dict[str, str]:
        return {"series": metric + matchers({**base, **extra}), "values": ramp((MINUTES + 1, rate))}

    if slo.metric in ("mae", "rmse"):
        sums = contract.FEEDBACK_ABSOLUTE_ERROR if slo.metric == "mae" else contract.FEEDBACK_SQUARED_ERROR
        return [
            counter(contract.FEEDBACK_SCORED.total, per_minute),
            counter(sums.total, per_minute * error),
        ]
    cls = {"class": slo.cls or "1"}
    events = contract.FEEDBACK_PREDICTED if slo.metric == "precision" else contract.FEEDBACK_LABELS
    return [
        counter(events.total, per_minute, **cls),
        counter(contract.FEEDBACK_CORRECT.total, per_minute * (1 - error), **cls),
    ]


def quality_cases(model: ResolvedModel, alert: AlertRule) -> list[Case]:
    quality = model.monitoring.quality
    assert quality is not None
    slo: QualitySlo = alert.params["quality"]
    pairs = alert.params["pairs"]
    lowest = min(pair.factor(quality.window) for pair in pairs) * slo.budget
    bounded = slo.bounded
    rate = max(100.0, 4.0 * quality.minFeedback / MINUTES)
    expected = _expected(alert, labels(model, slo))
    cases: list[Case] = []
    burning = 1.25 * lowest
    if bounded and burning >= 1:
        burning = 1.0 if lowest < 1 else 0.0
    if burning > lowest:
        cases.append(
            _case(
                f"{alert.alert}: an error of {number(burning)} burns the budget",
                _series(model, slo, rate, burning),
                alert,
                MINUTES,
                expected,
            )
        )
        few = quality.minFeedback / MINUTES / 4
        cases.append(
            _case(
                f"{alert.alert}: the same error in fewer than {quality.minFeedback} labels stays quiet",
                _series(model, slo, few, burning),
                alert,
                MINUTES,
                [],
            )
        )
    # A share of bad predictions is at most 1: where even that cannot fire the alert, all-wrong
    # labels are the quiet case (the alert is written, as for availability, and shown quiet).
    quiet = min(0.8 * lowest, 1.0) if bounded else 0.8 * lowest
    cases.append(
        _case(
            f"{alert.alert}: an error of {number(quiet)} stays within the budget",
            _series(model, slo, rate, quiet),
            alert,
            MINUTES,
            [],
        )
    )
    return cases


SCENARIOS: dict[str, Any] = {"quality-fast": quality_cases, "quality-slow": quality_cases}
