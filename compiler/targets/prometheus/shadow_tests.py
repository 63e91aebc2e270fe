"""promtool scenarios for the shadow alerts: two pods comparing rows with the candidate.

Disagreement above the spec's limit fires, and only because rows the candidate failed to score
count (three quarters of the bad rows are errors: without them the share is under the limit);
a share under the limit is quiet, and so is a candidate that disagrees on every row of a
window with fewer than `minComparisons` rows, whose ratio is then not recorded at all.
Dropped shadow work above its share fires; a little is quiet.
"""

from __future__ import annotations

from typing import Any

from compiler.metrics import contract
from compiler.resolve.resolved import ResolvedModel
from compiler.targets.prometheus.drift_tests import _case, _timeline
from compiler.targets.prometheus.promql import matchers, number, percent, selector
from compiler.targets.prometheus.rules import AlertRule
from compiler.targets.prometheus.shadow_rules import ANSWERED, DISAGREEMENT_RATIO, shadow_labels, window
from compiler.targets.prometheus.unittests import Case, _expected, ramp

PODS = ("a", "b")
MIN_ROWS = 1000.0  # rows per window in the cases with enough traffic, at least


def _counter(model: ResolvedModel, metric: str, per_window: float, **labels: str) -> list[Any]:
    """The counter of each pod, growing steadily so that the pods together count `per_window`
    in every window."""
    interval, end = _timeline(window(model))
    minutes = window(model).milliseconds // 60_000
    base = {"model": model.name, "namespace": model.namespace, "version": model.model.version.text}
    step = per_window / len(PODS) * interval / minutes
    return [
        {
            "series": metric + matchers({**base, "pod": pod, **labels}),
            "values": ramp((end // interval + 1, step)),
        }
        for pod in PODS
    ]


def _candidate(model: ResolvedModel) -> str:
    assert model.shadow is not None
    return model.shadow.version.text


def _comparisons(model: ResolvedModel, rows: float, agree: float, disagree: float, error: float) -> list[Any]:
    shares = {"agree": agree, "disagree": disagree, "error": error}
    metric = contract.SHADOW_COMPARISONS.total
    return [
        series
        for outcome, share in shares.items()
        for series in _counter(model, metric, rows * share, candidate=_candidate(model), outcome=outcome)
    ]


def disagreement_cases(model: ResolvedModel, alert: AlertRule) -> list[Case]:
    limit = alert.params["threshold"]
    guard = model.rollout.shadow.minComparisons
    interval, end = _timeline(window(model))
    rows = max(MIN_ROWS, 4.0 * guard)
    bad = min(2 * limit, (1 + limit) / 2)
    few = guard / 4
    quiet = _case(
        f"{alert.alert}: every one of {number(few)} rows in {window(model).text} disagrees: no verdict",
        _comparisons(model, few, 0, 1, 0),
        alert,
        interval,
        end,
        [],
    )
    quiet["promql_expr_test"] = [
        {
            "expr": selector(DISAGREEMENT_RATIO, shadow_labels(model)),
            "eval_time": f"{end}m",
            "exp_samples": [],
        }
    ]
    return [
        _case(
            f"{alert.alert}: {percent(bad)}% of the rows disagree (a quarter of them) or fail",
            _comparisons(model, rows, 1 - bad, bad / 4, 3 * bad / 4),
            alert,
            interval,
            end,
            _expected(alert, {}),
        ),
        _case(
            f"{alert.alert}: {percent(limit / 2)}% of the rows disagree",
            _comparisons(model, rows, 1 - limit / 2, limit / 2, 0),
            alert,
            interval,
            end,
            [],
        ),
        quiet,
    ]


def dropped_cases(model: ResolvedModel, alert: AlertRule) -> list[Case]:
    share = alert.params["threshold"]
    interval, end = _timeline(window(model))
    requests = max(MIN_ROWS, 4.0 * model.rollout.shadow.minComparisons)

    def traffic(dropped: float) -> list[Any]:
        answered = _counter(model, contract.REQUESTS.total, requests, code=ANSWERED)
        lost = requests * dropped
        return answered + _counter(model, contract.SHADOW_DROPPED.total, lost, candidate=_candidate(model))

    return [
        _case(
            f"{alert.alert}: {percent(2 * share)}% of the answered requests not shadowed",
            traffic(2 * share),
            alert,
            interval,
            end,
            _expected(alert, {}),
        ),
        _case(
            f"{alert.alert}: {percent(share / 2)}% of the answered requests not shadowed",
            traffic(share / 2),
            alert,
            interval,
            end,
            [],
        ),
    ]


SCENARIOS: dict[str, Any] = {"shadow-disagreement": disagreement_cases, "shadow-dropped": dropped_cases}
