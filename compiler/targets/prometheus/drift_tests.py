"""promtool scenarios for the drift alerts: bin counters of a shifted distribution make them
fire; the baseline itself and a small sample of it (the low-traffic case) leave them quiet,
and the small sample leaves the PSI unrecorded (no verdict below the sample guard).

Counts are built from the baseline the rules were written from, so a wrong share, floor,
join or guard in the rules fails `promtool test rules`.
"""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Any

from compiler.metrics.drift import psi
from compiler.resolve.resolved import ResolvedModel
from compiler.spec.types import Duration
from compiler.targets.prometheus.drift_rules import DRIFT_FOR, Distribution, distributions, drift_labels
from compiler.targets.prometheus.promql import matchers, selector
from compiler.targets.prometheus.rules import AlertRule
from compiler.targets.prometheus.unittests import Case, _expected, ramp

NOISE_PSI = 1e-9  # PSI of shares that differ only in their last bits stays below this
VISIBLE_PSI = 1e-3
LOW_TRAFFIC = 20  # requests in a whole window: the case that fired on every quiet model
STEP_MINUTES = 5  # the generated tests' evaluation interval


def _corner(baseline: tuple[float, ...]) -> int:
    return min(range(len(baseline)), key=lambda i: (baseline[i], i))


def _all_in_one(baseline: tuple[float, ...]) -> tuple[float, ...]:
    """The largest shift: every value in the baseline's least likely bin."""
    return tuple(1.0 if i == _corner(baseline) else 0.0 for i in range(len(baseline)))


@lru_cache(maxsize=1024)
def shifted(baseline: tuple[float, ...], target: float) -> tuple[float, ...] | None:
    """Shares moved from the baseline towards its least likely bin until PSI reaches `target`;
    None when even all of the traffic in that bin stays below it.

    Remembered: its 60 PSI evaluations cost more than the rest of a model's tests, and every
    environment of a spec asks for the same shifts. Shares come from counts, never -0.0 (equal
    to 0.0 for the cache, yet printed differently), so equal arguments give the same shares.
    """
    corner = _corner(baseline)

    def mix(t: float) -> tuple[float, ...]:
        return tuple((1 - t) * share + (t if i == corner else 0) for i, share in enumerate(baseline))

    if psi(baseline, mix(1.0)) <= target:
        return None
    low, high = 0.0, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if psi(baseline, mix(middle)) < target else (low, middle)
    return mix(high)


def low_traffic_sample(d: Distribution) -> list[int]:
    """LOW_TRAFFIC values drawn from the baseline (seeded: the same bytes every compile)."""
    draw = random.Random(f"{d.feature}").choices(range(len(d.bins)), weights=d.shares, k=LOW_TRAFFIC)
    return [draw.count(i) for i in range(len(d.bins))]


def _timeline(window: Duration) -> tuple[int, int]:
    """(minutes between samples, minutes to evaluate at): a window of samples, then `for`."""
    window_minutes = max(1, window.milliseconds // 60_000)
    interval = max(1, window_minutes // 60)
    wait = Duration.parse(DRIFT_FOR).milliseconds // 60_000
    end = window_minutes + wait
    while end % STEP_MINUTES or end % interval:
        end += 1
    return interval, end


def _series(
    model: ResolvedModel, d: Distribution, per_window: list[float], interval: int, end: int
) -> list[Any]:
    """Counters growing steadily by `per_window` values per window in each bin."""
    window_minutes = max(1, model.monitoring.drift.window.milliseconds // 60_000)  # type: ignore[union-attr]
    samples = end // interval + 1
    labels = {"model": model.name, "namespace": model.namespace, "version": model.model.version.text}
    return [
        {
            "series": d.names.counter + matchers({**labels, **d.key, "bin": b}),
            "values": ramp((samples, count * interval / window_minutes)),
        }
        for b, count in zip(d.bins, per_window, strict=True)
    ]


def _case(name: str, series: list[Any], alert: AlertRule, interval: int, end: int, fires: list[Any]) -> Case:
    return {
        "name": name,
        "interval": f"{interval}m",
        "input_series": series,
        "alert_rule_test": [{"eval_time": f"{end}m", "alertname": alert.alert, "exp_alerts": fires}],
    }


def drift_cases(model: ResolvedModel, alert: AlertRule) -> list[Case]:
    names, threshold = alert.params["names"], alert.params["threshold"]
    d = next(d for d in distributions(model) if d.names is names)
    interval, end = _timeline(model.monitoring.drift.window)  # type: ignore[union-attr]
    what = f"feature {d.feature}" if d.feature is not None else "predictions"
    # Enough traffic for a verdict, twice over.
    n = max(1000.0, 2.0 * d.min_samples)
    cases: list[Case] = []
    psi_critical = model.monitoring.drift.psi.critical  # type: ignore[union-attr]
    target = (threshold + psi_critical) / 2 if alert.kind.endswith("warning") else threshold * 1.5
    if not target > threshold:  # two thresholds a float apart: above critical fires both
        target = psi_critical * 1.5
    target = max(target, VISIBLE_PSI)  # a tinier index drowns in the float noise of the shares
    shares = shifted(d.shares, target)
    if shares is None and (reachable := shifted(d.shares, threshold)) is not None:
        shares = shifted(d.shares, (threshold + psi(d.shares, _all_in_one(d.shares))) / 2) or reachable
    if shares is not None:
        cases.append(
            _case(
                f"{alert.alert}: {what} shifted to PSI {psi(d.shares, shares):.4g}",
                _series(model, d, [n * s for s in shares], interval, end),
                alert,
                interval,
                end,
                _expected(alert, d.key),
            )
        )
    if threshold > NOISE_PSI:  # below it, the baseline's own float noise would fire
        cases.append(
            _case(
                f"{alert.alert}: {what} as in the baseline",
                _series(model, d, [n * s for s in d.shares], interval, end),
                alert,
                interval,
                end,
                [],
            )
        )
    if d.min_samples > LOW_TRAFFIC:
        counts = low_traffic_sample(d)
        case = _case(
            f"{alert.alert}: {LOW_TRAFFIC} requests in {model.monitoring.drift.window.text} "  # type: ignore[union-attr]
            f"drawn from the baseline (PSI {psi(d.shares, counts):.4g}) give no verdict",
            _series(model, d, [float(c) for c in counts], interval, end),
            alert,
            interval,
            end,
            [],
        )
        case["promql_expr_test"] = [
            {
                "expr": selector(d.names.psi, {**drift_labels(model), **d.key}),
                "eval_time": f"{end}m",
                "exp_samples": [],
            }
        ]
        cases.append(case)
    return cases


SCENARIOS = dict.fromkeys(
    ("drift-warning", "drift-critical", "prediction-drift-warning", "prediction-drift-critical"), drift_cases
)
