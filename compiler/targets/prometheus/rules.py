"""ResolvedModel -> Prometheus rule groups: SLI recording rules, burn-rate and quality alerts.

Pure. Every series name comes from the metrics contract; every label value from a spec goes
through PromQL or Go-template escaping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from compiler.metrics import contract
from compiler.metrics.contract import le_label, sli_error_ratio
from compiler.resolve.resolved import ResolvedModel
from compiler.spec.project import EnvironmentAlerts
from compiler.spec.slo import SLI_WINDOWS, WindowPair, pairs
from compiler.spec.types import Duration, Percentage
from compiler.targets.links import dashboard_url
from compiler.targets.prometheus import alert_text, drift_rules, quality_rules, shadow_rules
from compiler.targets.prometheus.promql import go_template_literal, matchers, number, percent, selector
from compiler.targets.prometheus.recording import RecordingRule

SloName = Literal["availability", "latency"]
COLLAPSE_SHARE = 0.99
COLLAPSE_MIN_PREDICTIONS = 100


@dataclass(frozen=True)
class AlertRule:
    alert: str
    expr: str
    labels: dict[str, str]
    annotations: dict[str, str]
    kind: str  # which scenario proves it (see unittests.py)
    for_: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"alert": self.alert, "expr": self.expr}
        if self.for_:
            body["for"] = self.for_
        body["labels"] = self.labels
        body["annotations"] = self.annotations
        return body


@dataclass(frozen=True)
class RuleGroup:
    name: str
    rules: list[RecordingRule | AlertRule]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rules": [rule.to_dict() for rule in self.rules]}


@dataclass(frozen=True)
class Slo:
    name: SloName
    target: Percentage

    @property
    def objective(self) -> float:
        """As a ratio, 0.999."""
        return self.target.ratio

    @property
    def budget(self) -> float:
        """The error budget as a ratio, 0.001 (exact, not 1 - 0.999 in floating point)."""
        return self.target.budget


def slos(model: ResolvedModel) -> list[Slo]:
    slo = model.monitoring.slo
    found: list[Slo] = []
    if slo is not None and slo.availability is not None:
        found.append(Slo("availability", slo.availability))
    if slo is not None and slo.latency is not None:
        found.append(Slo("latency", slo.latency.target))
    return found


def scope(model: ResolvedModel) -> dict[str, str]:
    """Labels that identify a model's series: set by the runtime (model) and the scrape."""
    return {"model": model.name, "namespace": model.namespace}


def record_labels(model: ResolvedModel, slo: SloName) -> dict[str, str]:
    return {**scope(model), "environment": model.environment, "slo": slo}


@dataclass(frozen=True)
class _Alerting:
    """What every alert of one model in one environment shares, worked out once per
    rule_groups: the spec's labels (escaped, less those the environment drops), the
    environment's severity replacements, and the runbook and dashboard links."""

    model: ResolvedModel
    spec_labels: dict[str, str]
    severities: dict[str, str]
    links: dict[str, str]

    @classmethod
    def of(cls, model: ResolvedModel, labelling: EnvironmentAlerts | None) -> _Alerting:
        dropped = set(labelling.dropLabels) if labelling is not None else set()
        spec_labels = {
            k: go_template_literal(v)
            for k, v in sorted(model.monitoring.alerts.labels.items())
            if k not in dropped
        }
        severities = {str(k): str(v) for k, v in labelling.severity.items()} if labelling is not None else {}
        links = {}
        if model.monitoring.alerts.runbook:
            links["runbook_url"] = go_template_literal(model.monitoring.alerts.runbook)
        if (url := dashboard_url(model)) is not None:
            links["dashboard_url"] = go_template_literal(url)
        return cls(model, spec_labels, severities, links)

    def labels(self, severity: str, **extra: str) -> dict[str, str]:
        """The spec's labels, then modelops's own (which no environment can drop)."""
        model = self.model
        return {
            **self.spec_labels,
            "severity": self.severities.get(severity, severity),
            "team": model.team,
            "model": model.name,
            "namespace": model.namespace,
            "environment": model.environment,
            **extra,
        }

    def annotations(self, kind: str, **context: Any) -> dict[str, str]:
        model = self.model
        summary, description = alert_text.render(
            kind, {"model": model.name, "environment": model.environment, "team": model.team, **context}
        )
        return {"summary": summary, "description": description, **self.links}


def _sli_error_exprs(model: ResolvedModel, slo: SloName) -> list[str]:
    """The SLI's error ratio over each of SLI_WINDOWS (its selectors written once)."""
    labels = scope(model)
    if slo == "availability":
        requests = contract.REQUESTS.total
        errors = selector(requests, labels, code='=~"5.."')
        total = selector(requests, labels)
        return [
            f"(sum(rate({errors}[{w.text}])) or vector(0))\n/\nsum(rate({total}[{w.text}]))"
            for w in SLI_WINDOWS
        ]
    threshold = model.monitoring.slo.latency.threshold.seconds  # type: ignore[union-attr]
    fast = selector(contract.REQUEST_DURATION.bucket, labels, le=f'="{le_label(threshold)}"')
    total = selector(contract.REQUEST_DURATION.count, labels)
    return [
        f"1 - (\n  sum(rate({fast}[{w.text}]))\n  /\n  sum(rate({total}[{w.text}]))\n)" for w in SLI_WINDOWS
    ]


def _slo_recording_rules(model: ResolvedModel, slo: Slo, period: Duration) -> list[RecordingRule]:
    labels = record_labels(model, slo.name)
    rules = [
        RecordingRule(sli_error_ratio(window.text), expr, labels)
        for window, expr in zip(SLI_WINDOWS, _sli_error_exprs(model, slo.name), strict=True)
    ]
    short = selector(sli_error_ratio("5m"), labels)
    rules.append(
        RecordingRule(
            contract.SLO_PERIOD_ERROR_RATIO,
            f"sum_over_time({short}[{period.text}])\n/\ncount_over_time({short}[{period.text}])",
            {**labels, "period": period.text},
        )
    )
    rules.append(RecordingRule(contract.SLO_OBJECTIVE, f"vector({number(slo.objective)})", labels))
    period_ratio = selector(contract.SLO_PERIOD_ERROR_RATIO, labels)
    rules.append(
        RecordingRule(
            contract.ERROR_BUDGET_REMAINING,
            f"1 - (sum({period_ratio}) / {number(slo.budget)})",
            {**labels, "period": period.text},
        )
    )
    return rules


def _burn_condition(ratio: str, pair: WindowPair, threshold: str) -> str:
    """Both windows of the pair above the threshold; `ratio` is the SLI series' matchers."""
    long = sli_error_ratio(pair.long.text) + ratio
    short = sli_error_ratio(pair.short.text) + ratio
    return f"(\n  {long} > {threshold}\n  and\n  {short} > {threshold}\n)"


def _slo_alerts(alerting: _Alerting, slo: Slo, period: Duration) -> list[AlertRule]:
    model = alerting.model
    alerts = []
    title = slo.name.capitalize()
    ratio = matchers(record_labels(model, slo.name))
    budget = slo.budget
    shown_budget, objective = number(budget), str(slo.target)
    meaning = (
        "Requests are failing (5xx)."
        if slo.name == "availability"
        else f"Requests are slower than {model.monitoring.slo.latency.threshold.text}."  # type: ignore[union-attr]
    )
    for severity, suffix, label, kind in (
        ("page", "Fast", "critical", "slo-fast"),
        ("ticket", "Slow", "warning", "slo-slow"),
    ):
        chosen = [(p, p.factor(period)) for p in pairs(severity)]  # type: ignore[arg-type]
        shown = [(p, number(factor)) for p, factor in chosen]
        expr = "\nor\n".join(_burn_condition(ratio, p, f"({factor} * {shown_budget})") for p, factor in shown)
        described = " or ".join(
            f"{number(p.budget_share * 100)}% in {p.long.text} (burn rate {factor})" for p, factor in shown
        )
        alerts.append(
            AlertRule(
                alert=f"Model{title}BudgetBurn{suffix}",
                expr=expr,
                labels=alerting.labels(label, slo=slo.name),
                annotations=alerting.annotations(
                    kind,
                    slo=slo.name,
                    pages=described,
                    objective=objective,
                    period=period.text,
                    meaning=meaning,
                ),
                kind=kind,
                params={
                    "slo": slo.name,
                    "budget": budget,
                    "pairs": [(p.long.text, p.short.text, factor) for p, factor in chosen],
                },
            )
        )
    return alerts


def _warning(
    alerting: _Alerting, kind: str, alert: str, expr: str, for_: str, threshold: float | None = None
) -> AlertRule:
    """A warning alert of the model; its summary and description are its kind's templates,
    given the threshold (a share) where the alert has one."""
    shown = {} if threshold is None else {"threshold": percent(threshold)}
    return AlertRule(
        alert=alert,
        expr=expr,
        for_=for_,
        labels=alerting.labels("warning"),
        annotations=alerting.annotations(kind, **shown),
        kind=kind,
        params={} if threshold is None else {"threshold": threshold},
    )


def _quality_alerts(alerting: _Alerting) -> list[AlertRule]:
    model = alerting.model
    labels = scope(model)
    alerts: list[AlertRule] = []
    ratio = model.monitoring.alerts.invalidInputRatio
    invalid = selector(contract.INVALID_INPUTS.total, labels)
    requests = selector(contract.REQUESTS.total, labels)
    invalid_ratio = f"sum(rate({invalid}[10m]))\n/\nsum(rate({requests}[10m]))\n> {number(ratio)}"
    alerts.append(
        _warning(alerting, "invalid-input", "ModelInvalidInputRatioHigh", invalid_ratio, "10m", ratio)
    )
    info = selector(contract.MODEL_INFO.info, labels)
    no_traffic = f"(sum(rate({requests}[15m])) or vector(0)) == 0\nand on ()\ncount({info}) > 0"
    alerts.append(_warning(alerting, "no-traffic", "ModelNoTraffic", no_traffic, "30m"))
    if model.model.task == "classification":
        predictions = selector(contract.PREDICTIONS.total, labels)
        collapse = (
            f"max(sum by (class) (increase({predictions}[30m])))\n"
            f"/\nsum(increase({predictions}[30m]))\n> {number(COLLAPSE_SHARE)}\n"
            f"and on ()\nsum(increase({predictions}[30m])) >= {COLLAPSE_MIN_PREDICTIONS}"
        )
        alerts.append(
            _warning(
                alerting, "prediction-collapse", "ModelPredictionCollapse", collapse, "15m", COLLAPSE_SHARE
            )
        )
    mismatch = f"count(count by (version) ({info})) > 1"
    hold = version_mismatch_hold(model).text
    alerts.append(_warning(alerting, "version-mismatch", "ModelVersionMismatch", mismatch, hold))
    return alerts


VERSION_MISMATCH_HOLD_MS = 30 * 60_000
_FIVE_MINUTES_MS = 5 * 60_000


def version_mismatch_hold(model: ResolvedModel) -> Duration:
    """How long two versions may serve side by side before it is a stuck rollout: 30m, plus a
    canary's pauses (its two versions run together on purpose), rounded up to whole 5m."""
    canary = model.rollout.canary if model.rollout.strategy == "canary" else None
    paused = sum(step.pause.milliseconds for step in canary.steps) if canary is not None else 0
    steps = -(-(VERSION_MISMATCH_HOLD_MS + paused) // _FIVE_MINUTES_MS)
    return Duration.from_milliseconds(steps * _FIVE_MINUTES_MS)


def rule_groups(model: ResolvedModel, labelling: EnvironmentAlerts | None = None) -> list[RuleGroup]:
    """Every rule group of the model; alert labels as the environment's `labelling` says."""
    alerting = _Alerting.of(model, labelling)
    groups: list[RuleGroup] = []
    model_slos = slos(model)
    if model_slos:
        period = model.monitoring.slo.window  # type: ignore[union-attr]
        recording: list[RecordingRule | AlertRule] = []
        alerts: list[RecordingRule | AlertRule] = []
        for slo in model_slos:
            recording.extend(_slo_recording_rules(model, slo, period))
            alerts.extend(_slo_alerts(alerting, slo, period))
        groups.append(RuleGroup(f"modelops-{model.name}-slo-recording", recording))
        groups.append(RuleGroup(f"modelops-{model.name}-slo-alerts", alerts))
    groups.append(RuleGroup(f"modelops-{model.name}-quality-alerts", list(_quality_alerts(alerting))))
    groups.extend(_drift_groups(alerting))
    groups.extend(_quality_slo_groups(alerting))
    groups.extend(_shadow_groups(alerting))
    return groups


def _drift_groups(alerting: _Alerting) -> list[RuleGroup]:
    """PSI recorded from bin counters summed across pods (see drift_rules), and its alerts."""
    model = alerting.model
    recorded = drift_rules.recordings(model)
    if not recorded or model.monitoring.drift is None:
        return []
    window = model.monitoring.drift.window.text
    alerts = [
        AlertRule(
            alert=a.alert,
            expr=a.expr,
            for_=drift_rules.DRIFT_FOR,
            labels=alerting.labels(a.severity),
            annotations=alerting.annotations(a.kind, threshold=number(a.threshold), window=window),
            kind=a.kind,
            params={"threshold": a.threshold, "names": a.names},
        )
        for a in drift_rules.alerts(model)
    ]
    return _recorded_groups(model, "drift", recorded, alerts)


def rule_file(groups: list[RuleGroup]) -> dict[str, Any]:
    """A plain Prometheus rule file (what `promtool check rules` and Prometheus read)."""
    return {"groups": [group.to_dict() for group in groups]}


def alerts_of(groups: list[RuleGroup]) -> list[AlertRule]:
    return [rule for group in groups for rule in group.rules if isinstance(rule, AlertRule)]


def _quality_slo_groups(alerting: _Alerting) -> list[RuleGroup]:
    """Quality SLOs from ground truth (see quality_rules): SLIs, budget and burn-rate alerts."""
    model = alerting.model
    quality = model.monitoring.quality
    recorded = quality_rules.recordings(model)
    if not recorded or quality is None:
        return []
    alerts = [
        AlertRule(
            alert=a.alert,
            expr=a.expr,
            labels=alerting.labels(a.severity, slo=a.slo.metric),
            annotations=alerting.annotations(
                a.kind,
                slo=a.slo.metric,
                objective=a.slo.describe,
                period=quality.window.text,
                pages=a.pages,
                delay=quality.labelDelay.text,
            ),
            kind=a.kind,
            params={"quality": a.slo, "pairs": a.pairs},
        )
        for a in quality_rules.alerts(model)
    ]
    return _recorded_groups(model, "quality-slo", recorded, alerts)


def _shadow_groups(alerting: _Alerting) -> list[RuleGroup]:
    """Shadow agreement recorded across pods (see shadow_rules), and its alerts."""
    model = alerting.model
    recorded = shadow_rules.recordings(model)
    if not recorded:
        return []
    alerts = [
        AlertRule(
            alert=a.alert,
            expr=a.expr,
            for_=shadow_rules.SHADOW_FOR,
            labels=alerting.labels("warning"),
            annotations=alerting.annotations(a.kind, **a.text),
            kind=a.kind,
            params={"threshold": a.threshold},
        )
        for a in shadow_rules.alerts(model)
    ]
    return _recorded_groups(model, "shadow", recorded, alerts)


def _recorded_groups(
    model: ResolvedModel,
    part: str,
    recorded: Sequence[RecordingRule],
    alerts: list[AlertRule],
) -> list[RuleGroup]:
    """A part's recording group (from the records its module computes) and its alert group."""
    return [
        RuleGroup(
            f"modelops-{model.name}-{part}-recording",
            list(recorded),
        ),
        RuleGroup(f"modelops-{model.name}-{part}-alerts", list(alerts)),
    ]
