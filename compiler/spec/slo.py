"""Multiwindow, multi-burn-rate SLO alerting (Google SRE workbook, as Sloth generates it).

A burn rate is how fast the error budget is being spent: 1 spends it exactly over the SLO
period. An alert window pair fires when both windows burn faster than
    factor = share of the budget spent in the long window x period / long window,
so a 28-day SLO pages at 13.44 (2% in 1h) rather than the 14.4 of a 30-day one.

Pure math on spec values: the spec checks use it to refuse an SLO that can never alert, and the
Prometheus and Grafana targets render its windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from compiler.spec.types import Duration

Severity = Literal["page", "ticket"]


@dataclass(frozen=True)
class WindowPair:
    long: Duration
    short: Duration
    budget_share: float
    severity: Severity

    def factor(self, period: Duration) -> float:
        return round(self.budget_share * period.milliseconds / self.long.milliseconds, 4)


def _d(text: str) -> Duration:
    return Duration.parse(text)


WINDOW_PAIRS: tuple[WindowPair, ...] = (
    WindowPair(_d("1h"), _d("5m"), 0.02, "page"),
    WindowPair(_d("6h"), _d("30m"), 0.05, "page"),
    WindowPair(_d("1d"), _d("2h"), 0.10, "ticket"),
    WindowPair(_d("3d"), _d("6h"), 0.10, "ticket"),
)
SLI_WINDOWS: tuple[Duration, ...] = tuple(
    sorted({w for pair in WINDOW_PAIRS for w in (pair.long, pair.short)}, key=lambda d: d.milliseconds)
)
# The burn rates a dashboard plots: the fastest window, then every pair's long window (the short
# windows of the slower pairs would only draw lines between those).
BURN_RATE_PANEL_WINDOWS: tuple[Duration, ...] = (
    min((pair.short for pair in WINDOW_PAIRS), key=lambda d: d.milliseconds),
    *(pair.long for pair in WINDOW_PAIRS),
)


def pairs(severity: Severity) -> tuple[WindowPair, ...]:
    return tuple(pair for pair in WINDOW_PAIRS if pair.severity == severity)


def burn_threshold(factor: float, budget: float) -> float:
    """The error ratio a window pair fires above: the rule's `(factor * budget)`, as Prometheus
    computes it (the rule prints both exactly); at 1 or more the pair cannot fire, since at most
    every request fails."""
    return factor * budget


def can_fire(severity: Severity, period: Duration, budget: float) -> bool:
    """Whether some window pair of `severity` fires when enough requests fail."""
    return any(burn_threshold(pair.factor(period), budget) < 1 for pair in pairs(severity))


def lowest_objective_that_fires(severity: Severity, period: Duration) -> float:
    """The objective (a ratio) above which an alert of `severity` can fire over `period`."""
    return 1 - 1 / max(pair.factor(period) for pair in pairs(severity))


def quality_pairs(period: Duration, label_delay: Duration) -> tuple[WindowPair, ...]:
    """The pairs a quality SLO alerts with: labels come `label_delay` late, so a long window
    no longer than that cannot see a burn in time; and a factor of 1 or less would fire on
    a burn that still meets the objective (a short period's slow pairs)."""
    return tuple(
        pair
        for pair in WINDOW_PAIRS
        if pair.long.milliseconds > label_delay.milliseconds and pair.factor(period) > 1
    )


def share_can_burn(pair: WindowPair, period: Duration, budget: float) -> bool:
    """Whether a share of bad predictions (at most 1) can cross the pair's burn threshold."""
    return pair.factor(period) * budget < 1
