"""Quality SLOs from ground truth (`monitoring.quality`): SLI, error budget and multiwindow
burn-rate alerts in the style of the availability and latency SLOs (compiler/spec/slo.py).

A bad prediction spends budget. For accuracy, precision and recall the error measure is the
share of labelled predictions that were wrong (precision: among those predicted as the class;
recall: among those truly of it), and the budget is 1 - min. For mae the measure is the mean
absolute error and the budget `max`; for rmse the mean squared error and `max`²: the budget is
the total error the target allows, and burn rate 1 spends exactly that over the period.

Labels arrive `labelDelay` after the predictions, so a window pair whose long window is no
longer than that cannot see a burn in time and is left out; so is a pair whose factor is 1
or less (it would fire on a burn that still meets the target). Every pair also needs
`minFeedback` labels in its long window: a handful of labels says nothing about quality.
Series names are the SLO ones, with `slo` set to the metric, so the SLO overview lists them.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.metrics import contract
from compiler.metrics.contract import sli_error_ratio
from compiler.resolve.resolved import ResolvedModel
from compiler.spec.model import Quality, QualityTarget
from compiler.spec.slo import WindowPair, quality_pairs, share_can_burn
from compiler.spec.types import Duration
from compiler.targets.prometheus.promql import number, selector
from compiler.targets.prometheus.recording import RecordingRule

QUALITY_METRICS = ("accuracy", "precision", "recall", "mae", "rmse")
DEFAULT_CLASS = "1"


@dataclass(frozen=True)
class QualitySlo:
    metric: str
    target: QualityTarget
    cls: str | None  # precision and recall: the class they are measured for

    @property
    def budget(self) -> float:
        if self.metric == "mae":
            assert self.target.max is not None
            return self.target.max
        if self.metric == "rmse":
            assert self.target.max is not None
            return self.target.max * self.target.max
        assert self.target.min is not None
        return float(f"{1 - self.target.min:.15g}")

    @property
    def bounded(self) -> bool:
        """A share of bad predictions, at most 1: a pair whose threshold is higher never fires."""
        return self.metric not in ("mae", "rmse")

    @property
    def objective(self) -> float:
        bound = self.target.max if self.metric in ("mae", "rmse") else self.target.min
        assert bound is not None
        return bound

    @property
    def describe(self) -> str:
        if self.metric in ("mae", "rmse"):
            return f"{self.metric} at most {number(self.objective)}"
        of = f" of class {self.cls}" if self.cls is not None else ""
        return f"{self.metric}{of} at least {number(self.objective)}"


def quality_slos(model: ResolvedModel) -> list[QualitySlo]:
    quality = model.monitoring.quality
    if quality is None:
        return []
    found = []
    for metric in QUALITY_METRICS:
        target: QualityTarget | None = getattr(quality, metric)
        if target is not None:
            cls = (target.class_ or DEFAULT_CLASS) if metric in ("precision", "recall") else None
            found.append(QualitySlo(metric, target, cls))
    return found


def pairs_of(quality: Quality) -> tuple[WindowPair, ...]:
    return quality_pairs(quality.window, quality.labelDelay)


def quality_windows(quality: Quality) -> tuple[Duration, ...]:
    pairs = pairs_of(quality)
    return tuple(sorted({w for p in pairs for w in (p.long, p.short)}, key=lambda d: d.milliseconds))


def labels(model: ResolvedModel, slo: QualitySlo) -> dict[str, str]:
    return {
        "model": model.name,
        "namespace": model.namespace,
        "environment": model.environment,
        "slo": slo.metric,
    }


def _sums(model: ResolvedModel, slo: QualitySlo, window: str) -> tuple[str, str]:
    """(bad measure, events) over `window`: the numerator and denominator of the error."""
    scope = {"model": model.name, "namespace": model.namespace}

    def total(metric: str, **extra: str) -> str:
        return f"sum(increase({selector(metric, {**scope, **extra})}[{window}]))"

    if slo.metric == "mae":
        scored = total(contract.FEEDBACK_SCORED.total)
        return total(contract.FEEDBACK_ABSOLUTE_ERROR.total), scored
    if slo.metric == "rmse":
        scored = total(contract.FEEDBACK_SCORED.total)
        return total(contract.FEEDBACK_SQUARED_ERROR.total), scored
    cls = {"class": slo.cls} if slo.cls is not None else {}
    correct = total(contract.FEEDBACK_CORRECT.total, **cls)
    if slo.metric == "precision":
        events = total(contract.FEEDBACK_PREDICTED.total, **cls)
    else:
        events = total(contract.FEEDBACK_LABELS.total, **cls)
    return f"({events} - {correct})", events


def recordings(model: ResolvedModel) -> list[RecordingRule]:
    quality = model.monitoring.quality
    if quality is None:
        return []
    rules: list[RecordingRule] = []
    for slo in quality_slos(model):
        mine = labels(model, slo)
        for window in quality_windows(quality):
            bad, events = _sums(model, slo, window.text)
            rules.append(RecordingRule(sli_error_ratio(window.text), f"{bad}\n/\n{events}", mine))
            rules.append(RecordingRule(contract.quality_events(window.text), events, mine))
        period = quality.window.text
        bad, events = _sums(model, slo, period)
        rules.append(
            RecordingRule(contract.SLO_PERIOD_ERROR_RATIO, f"{bad}\n/\n{events}", {**mine, "period": period})
        )
        rules.append(RecordingRule(contract.SLO_OBJECTIVE, f"vector({number(slo.objective)})", mine))
        rules.append(
            RecordingRule(
                contract.ERROR_BUDGET_REMAINING,
                f"1 - (sum({selector(contract.SLO_PERIOD_ERROR_RATIO, mine)}) / {number(slo.budget)})",
                {**mine, "period": period},
            )
        )
    return rules


@dataclass(frozen=True)
class QualityAlert:
    alert: str
    expr: str
    severity: str  # the alert's severity label
    kind: str
    slo: QualitySlo
    pairs: tuple[WindowPair, ...]
    pages: str  # the pairs, as people read them


def alerts(model: ResolvedModel) -> list[QualityAlert]:
    quality = model.monitoring.quality
    if quality is None:
        return []
    found = []
    for slo in quality_slos(model):
        mine = labels(model, slo)
        for page, suffix, severity, kind in (
            ("page", "Fast", "critical", "quality-fast"),
            ("ticket", "Slow", "warning", "quality-slow"),
        ):
            chosen = tuple(
                p
                for p in pairs_of(quality)
                if p.severity == page and (not slo.bounded or share_can_burn(p, quality.window, slo.budget))
            )
            if not chosen:
                continue
            conditions = []
            for pair in chosen:
                threshold = f"({number(pair.factor(quality.window))} * {number(slo.budget)})"
                long = selector(sli_error_ratio(pair.long.text), mine)
                short = selector(sli_error_ratio(pair.short.text), mine)
                events = selector(contract.quality_events(pair.long.text), mine)
                conditions.append(
                    f"(\n  {long} > {threshold}\n  and\n  {short} > {threshold}\n"
                    f"  and\n  {events} >= {quality.minFeedback}\n)"
                )
            found.append(
                QualityAlert(
                    alert=f"Model{slo.metric.capitalize()}BudgetBurn{suffix}",
                    expr="\nor\n".join(conditions),
                    severity=severity,
                    kind=kind,
                    slo=slo,
                    pairs=chosen,
                    pages=" or ".join(
                        f"{number(p.budget_share * 100)}% in {p.long.text} "
                        f"(burn rate {number(p.factor(quality.window))})"
                        for p in chosen
                    ),
                )
            )
    return found
