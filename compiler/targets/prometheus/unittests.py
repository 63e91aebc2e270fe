"""promtool unit tests for every generated alert: input series that make it fire, and
series that must leave it quiet, evaluated at the right time.

Each scenario is derived from the same parameters the rules were built from, so a broken
expression (a wrong factor, metric or label) makes `promtool test rules` fail.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from compiler.metrics import contract
from compiler.metrics.contract import le_label
from compiler.resolve.resolved import ResolvedModel
from compiler.spec.slo import burn_threshold
from compiler.spec.types import decimal_text
from compiler.targets.prometheus.promql import matchers, number, percent
from compiler.targets.prometheus.rules import (
    AlertRule,
    RuleGroup,
    alerts_of,
    record_labels,
    scope,
    version_mismatch_hold,
)

RATE_PER_MINUTE = 100.0
# promtool evaluates every rule at each step up to a case's time, and that is most of its
# run time. Every eval time (30m, 60m, 420m) and every `for` (10m, 15m, 30m) is a multiple
# of 5m, so a coarser step proves the same and runs five times faster; the series keep 1m.
EVALUATION_INTERVAL = "5m"
Case = dict[str, Any]


def ramp(*segments: tuple[int, float]) -> str:
    """promtool expanding notation for a counter: segments of (samples, increase per sample)."""
    parts, value = [], 0.0
    for samples, increase in segments:
        parts.append(f"{number(value)}+{number(increase)}x{samples - 1}")
        value += increase * samples
    return " ".join(parts)


def flat(value: float, samples: int) -> str:
    return f"{number(value)}+0x{samples - 1}"


def _series(metric: str, labels: dict[str, str], values: str) -> dict[str, str]:
    return {"series": metric + matchers(labels), "values": values}


_TEMPLATE = re.compile(r'\{\{ \$labels\.(\w+) \}\}|\{\{ "\{\{" \}\}')


def expand(text: str, labels: dict[str, str]) -> str:
    """What Prometheus makes of our annotation templates (the only actions we emit)."""
    if "{{" not in text:  # most labels and annotations: nothing to expand
        return text
    return _TEMPLATE.sub(lambda m: labels[m.group(1)] if m.group(1) else "{{", text)


def _expected(alert: AlertRule, extra_labels: dict[str, str]) -> list[dict[str, Any]]:
    labels = {**extra_labels, **{k: expand(v, {}) for k, v in alert.labels.items()}}
    return [
        {
            "exp_labels": labels,
            "exp_annotations": {k: expand(v, labels) for k, v in alert.annotations.items()},
        }
    ]


def _case(name: str, series: list[dict[str, str]], alert: AlertRule, minutes: int, fires: list[Any]) -> Case:
    return {
        "name": name,
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [{"eval_time": f"{minutes}m", "alertname": alert.alert, "exp_alerts": fires}],
    }


def _labels(model: ResolvedModel, **extra: str) -> dict[str, str]:
    return {**scope(model), "version": model.model.version.text, **extra}


def _slo_series(model: ResolvedModel, slo: str) -> list[str]:
    """The series an SLO's scenarios feed, in the order of _slo_values."""
    if slo == "availability":
        return [
            contract.REQUESTS.total + matchers(_labels(model, code="200")),
            contract.REQUESTS.total + matchers(_labels(model, code="500")),
        ]
    threshold = model.monitoring.slo.latency.threshold.seconds  # type: ignore[union-attr]
    duration = contract.REQUEST_DURATION
    return [
        duration.bucket + matchers(_labels(model, le=le_label(threshold))),
        duration.bucket + matchers(_labels(model, le="+Inf")),
        duration.count + matchers(_labels(model)),
    ]


def _slo_values(slo: str, segments: list[tuple[int, Decimal]]) -> tuple[str, ...]:
    """Traffic of RATE_PER_MINUTE requests, with the given share of bad ones per segment.

    Shares are decimals so that good + bad is exactly the rate, whatever the share: a tight
    objective's share of 1e-10 must not vanish into the good requests' rounding.
    """
    rate = Decimal(RATE_PER_MINUTE)
    good = ramp(*[(n, float(rate - rate * e)) for n, e in segments])
    if slo == "availability":
        return good, ramp(*[(n, float(rate * e)) for n, e in segments])
    total = ramp(*[(n, RATE_PER_MINUTE) for n, _ in segments])
    return good, total, total


def _share(share: Decimal) -> str:
    """A share of requests as a percentage, for a test's name."""
    return decimal_text(share * 100)


@dataclass(frozen=True)
class _SloCase:
    """An SLO scenario apart from the model: what _slo_series are fed, when it is evaluated."""

    title: str  # the test's name, after the alert's
    values: tuple[str, ...]  # per series of _slo_series
    minutes: int
    fires: bool


@lru_cache(maxsize=256)
def _slo_scenarios(slo: str, kind: str, budget: float, factors: tuple[float, ...]) -> tuple[_SloCase, ...]:
    """An SLO alert's scenarios: the same for every model with the same objective and period,
    so worked out once for them all. Remembered by value, which is safe as budgets and factors
    are positive: no two equal keys print differently (as 0.0 and -0.0 would)."""
    # Decide with the floats Prometheus compares; build the shares in decimal from the rule's text.
    lowest_factor = min(factors, key=lambda f: burn_threshold(f, budget))
    lowest = Decimal(number(lowest_factor)) * Decimal(number(budget))
    # A constant share of bad requests gives every window the same ratio, so one hour of
    # input decides the case (longer windows only see less of it); it keeps promtool quick.
    minutes = 60
    cases: list[_SloCase] = []
    if burn_threshold(lowest_factor, budget) < 1:
        # Every request failing gives a ratio of exactly 1, above any threshold below 1.
        burning = min(Decimal(1), Decimal("1.25") * lowest)
        cases.append(
            _SloCase(
                f"{_share(burning)}% bad requests burn the budget",
                _slo_values(slo, [(minutes + 1, burning)]),
                minutes,
                fires=True,
            )
        )
        quiet = Decimal("0.8") * lowest
        quiet_title = f"{_share(quiet)}% bad requests stay within the budget"
    else:
        # The objective leaves so much budget that even failing every request cannot reach
        # the threshold (validate warns): the alert must stay quiet through a total outage.
        quiet = Decimal(1)
        quiet_title = "every request fails, still under this objective's burn threshold"
    cases.append(_SloCase(quiet_title, _slo_values(slo, [(minutes + 1, quiet)]), minutes, fires=False))
    fastest_factor = max(factors)
    fastest = Decimal(number(fastest_factor)) * Decimal(number(budget))
    if kind == "slo-fast" and Decimal("1.25") * fastest < 1:
        # A burst as long as the fastest pair's long window (1h) after a clean 6h: the slower
        # page pair sees it diluted below its factor (0.02/0.05 x 1.25 = half of it), so only
        # the fastest pair can fire. A wrong factor or window on that pair fails this case.
        burst = Decimal("1.25") * fastest
        clean, hour = 360, 60
        cases.append(
            _SloCase(
                f"a one-hour burst of {_share(burst)}% bad requests",
                _slo_values(slo, [(clean, Decimal(0)), (hour + 1, burst)]),
                clean + hour,
                fires=True,
            )
        )
    return tuple(cases)


def _slo_cases(model: ResolvedModel, alert: AlertRule) -> list[Case]:
    slo = alert.params["slo"]
    factors = tuple(factor for _, _, factor in alert.params["pairs"])
    series = _slo_series(model, slo)
    labels = record_labels(model, slo)
    return [
        _case(
            f"{alert.alert}: {case.title}",
            [{"series": name, "values": values} for name, values in zip(series, case.values, strict=True)],
            alert,
            case.minutes,
            _expected(alert, labels) if case.fires else [],
        )
        for case in _slo_scenarios(slo, alert.kind, alert.params["budget"], factors)
    ]


def _invalid_input_cases(model: ResolvedModel, alert: AlertRule) -> list[Case]:
    threshold = alert.params["threshold"]

    def traffic(share: float) -> list[dict[str, str]]:
        return [
            _series(contract.REQUESTS.total, _labels(model, code="200"), ramp((31, RATE_PER_MINUTE))),
            _series(
                contract.INVALID_INPUTS.total,
                _labels(model, reason="schema"),
                ramp((31, RATE_PER_MINUTE * share)),
            ),
        ]

    # Invalid requests are counted beside the 200s, so a share of 1 (as many invalid as
    # valid) gives a ratio of exactly 1, above any threshold, which is below 1.
    firing = min(1.0, threshold * 2)
    return [
        _case(
            f"{alert.alert}: {percent(firing)}% invalid",
            traffic(firing),
            alert,
            30,
            _expected(alert, {}),
        ),
        _case(f"{alert.alert}: {percent(threshold / 2)}% invalid", traffic(threshold / 2), alert, 30, []),
    ]


def _info(model: ResolvedModel, pod: str, version: str, samples: int) -> dict[str, str]:
    labels = {
        **scope(model),
        "version": version,
        "framework": model.model.framework,
        "task": model.model.task,
        "pod": pod,
    }
    return _series(contract.MODEL_INFO.info, labels, flat(1, samples))


def _no_traffic_cases(model: ResolvedModel, alert: AlertRule) -> list[Case]:
    version = model.model.version.text
    idle = [
        _series(contract.REQUESTS.total, _labels(model, code="200"), flat(0, 61)),
        _info(model, "a", version, 61),
    ]
    busy = [
        _series(contract.REQUESTS.total, _labels(model, code="200"), ramp((61, RATE_PER_MINUTE))),
        _info(model, "a", version, 61),
    ]
    return [
        _case(f"{alert.alert}: pods up, no requests for an hour", idle, alert, 60, _expected(alert, {})),
        _case(f"{alert.alert}: pods up and serving", busy, alert, 60, []),
    ]


def _collapse_cases(model: ResolvedModel, alert: AlertRule) -> list[Case]:
    metric = contract.PREDICTIONS.total

    def predictions(zero: float, one: float) -> list[dict[str, str]]:
        return [
            _series(metric, _labels(model, **{"class": "0"}), ramp((61, zero))),
            _series(metric, _labels(model, **{"class": "1"}), ramp((61, one))),
        ]

    return [
        _case(
            f"{alert.alert}: every prediction is class 1",
            predictions(0, RATE_PER_MINUTE),
            alert,
            60,
            _expected(alert, {}),
        ),
        _case(f"{alert.alert}: predictions split between classes", predictions(50, 50), alert, 60, []),
    ]


def _version_cases(model: ResolvedModel, alert: AlertRule) -> list[Case]:
    version = model.model.version.text
    minutes = version_mismatch_hold(model).milliseconds // 60_000 + 30  # past its `for`
    return [
        _case(
            f"{alert.alert}: two pods report different versions",
            [_info(model, "a", version, minutes + 1), _info(model, "b", "0.0.1", minutes + 1)],
            alert,
            minutes,
            _expected(alert, {}),
        ),
        _case(
            f"{alert.alert}: every pod reports {version}",
            [_info(model, "a", version, minutes + 1), _info(model, "b", version, minutes + 1)],
            alert,
            minutes,
            [],
        ),
    ]


SCENARIOS: dict[str, Callable[[ResolvedModel, AlertRule], list[Case]]] = {
    "slo-fast": _slo_cases,
    "slo-slow": _slo_cases,
    "invalid-input": _invalid_input_cases,
    "no-traffic": _no_traffic_cases,
    "prediction-collapse": _collapse_cases,
    "version-mismatch": _version_cases,
}


def unit_tests(
    model: ResolvedModel, groups: list[RuleGroup], rule_file: str = "rules.yaml"
) -> dict[str, Any]:
    """A promtool test file covering every alert in `groups`, firing and quiet."""
    # Built on this module's helpers, so imported here rather than at the top (no cycle).
    from compiler.targets.prometheus.drift_tests import SCENARIOS as DRIFT_SCENARIOS
    from compiler.targets.prometheus.quality_tests import SCENARIOS as QUALITY_SCENARIOS
    from compiler.targets.prometheus.shadow_tests import SCENARIOS as SHADOW_SCENARIOS

    scenarios = SCENARIOS | DRIFT_SCENARIOS | QUALITY_SCENARIOS | SHADOW_SCENARIOS
    tests = [case for alert in alerts_of(groups) for case in scenarios[alert.kind](model, alert)]
    # promtool evaluates groups in random order unless told: recordings first, as in the file,
    # so an alert never reads a recording one evaluation behind (flaky at edge times).
    return {
        "rule_files": [rule_file],
        "evaluation_interval": EVALUATION_INTERVAL,
        "group_eval_order": [group.name for group in groups],
        "tests": tests,
    }
