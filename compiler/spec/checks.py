"""Semantic checks that types alone cannot express, run on each resolved spec."""

from __future__ import annotations

import math

from compiler.diagnostics import Diagnostic, Severity
from compiler.spec.model import (
    BOUNDED_0_1,
    CLASSIFICATION_GATES,
    LOWER_IS_BETTER,
    REGRESSION_GATES,
    Canary,
    ModelSpec,
    Slo,
)
from compiler.spec.slo import Severity as AlertSeverity
from compiler.spec.slo import can_fire, lowest_objective_that_fires, quality_pairs, share_can_burn
from compiler.spec.types import Duration, Percentage
from compiler.spec.yamlsource import PathKey, PositionMap

RESERVED_ALERT_LABELS = frozenset(
    {"severity", "team", "model", "namespace", "environment", "slo", "feature", "alertname"}
)
SHORTEST_SLO_WINDOW = Duration("3d", 3 * 86_400_000)  # the longest burn-rate alert window
LONGEST_SLO_WINDOW = Duration("400d", 400 * 86_400_000)
SHORTEST_DRIFT_WINDOW = Duration("10m", 600_000)
LONGEST_DRIFT_WINDOW = Duration("7d", 7 * 86_400_000)
QUALITY_CLASSIFICATION = ("accuracy", "precision", "recall")
QUALITY_REGRESSION = ("mae", "rmse")


class _Collector:
    def __init__(self, file: str, positions: PositionMap) -> None:
        self.file = file
        self.positions = positions
        self.found: list[Diagnostic] = []

    def error(self, path: PathKey, message: str, *, key: bool = False, code: str = "semantic") -> None:
        self.add(path, message, Severity.ERROR, key=key, code=code)

    def warning(self, path: PathKey, message: str, *, key: bool = False, code: str = "semantic") -> None:
        self.add(path, message, Severity.WARNING, key=key, code=code)

    def add(self, path: PathKey, message: str, severity: Severity, *, key: bool, code: str) -> None:
        position = self.positions.key(path) if key else self.positions.value(path)
        if position is None:
            self.found.append(Diagnostic(self.file, 1, 1, message, severity, code))
        else:
            self.found.append(Diagnostic.at(position, message, severity=severity, code=code))


def check_model(spec: ModelSpec, positions: PositionMap, file: str) -> list[Diagnostic]:
    """Checks on one model as resolved for one environment.

    Messages do not name the environment: the position already points at the overlay line
    when an overlay caused the problem, and identical base-spec problems then collapse into one.
    """
    out = _Collector(file, positions)
    serving = spec.spec.serving

    if serving.runtime == "kserve":
        out.error(
            ("spec", "serving", "runtime"),
            "runtime 'kserve' cannot be compiled yet (KServe's sklearn server loads pickle, not "
            "skops); use runtime: builtin",
        )
    replicas = serving.replicas
    if replicas.min > replicas.max:
        out.error(
            ("spec", "serving", "replicas", "min"),
            f"replicas.min ({replicas.min}) is greater than replicas.max ({replicas.max})",
        )
    elif serving.autoscaling is not None and replicas.min == replicas.max:
        out.warning(
            ("spec", "serving", "autoscaling"),
            f"autoscaling has no room: replicas.min equals replicas.max ({replicas.max})",
        )
    if serving.port == serving.metricsPort:
        out.error(
            ("spec", "serving", "metricsPort"),
            f"metricsPort must differ from port ({serving.port})",
        )

    for resource in ("cpu", "memory", "ephemeral_storage"):
        request = getattr(serving.resources.requests, resource)
        limit = getattr(serving.resources.limits, resource)
        if request is not None and limit is not None and request > limit:
            name = resource.replace("_", "-")
            out.error(
                ("spec", "serving", "resources", "limits", name),
                f"{name} limit {limit} is below its request {request}; Kubernetes rejects this",
            )

    _check_gates(spec, out)
    _check_delivery(spec, out)

    monitoring = spec.spec.monitoring
    for name in monitoring.alerts.labels:
        if name in RESERVED_ALERT_LABELS:
            out.error(
                ("spec", "monitoring", "alerts", "labels", name),
                f"alert label {name!r} is set by modelops itself; choose another name",
                key=True,
            )
    if monitoring.slo is not None:
        window = monitoring.slo.window
        if not SHORTEST_SLO_WINDOW <= window <= LONGEST_SLO_WINDOW:
            out.error(
                ("spec", "monitoring", "slo", "window"),
                f"SLO window {window} must be between {SHORTEST_SLO_WINDOW} and {LONGEST_SLO_WINDOW} "
                "(the slowest burn-rate alert looks back 3d)",
            )
        else:
            _check_alerts_can_fire(monitoring.slo, out)
    if monitoring.drift is not None and monitoring.drift.psi is not None:
        psi = monitoring.drift.psi
        if psi.warning >= psi.critical:
            out.error(
                ("spec", "monitoring", "drift", "psi", "warning"),
                f"drift psi warning ({psi.warning}) must be below critical ({psi.critical})",
            )
        if not spec.spec.model.features:
            out.error(
                ("spec", "monitoring", "drift"),
                "drift monitoring needs spec.model.features: PSI is computed per feature",
            )
    if (
        monitoring.drift is not None
        and not SHORTEST_DRIFT_WINDOW <= monitoring.drift.window <= LONGEST_DRIFT_WINDOW
    ):
        out.error(
            ("spec", "monitoring", "drift", "window"),
            f"drift window {monitoring.drift.window} must be between {SHORTEST_DRIFT_WINDOW} and "
            f"{LONGEST_DRIFT_WINDOW} (shares need several scrapes; longer windows cost Prometheus dearly)",
        )
    _check_quality(spec, out)
    return out.found


def _check_quality(spec: ModelSpec, out: _Collector) -> None:
    """Quality SLOs fit the task and can alert; a gate without one is offered as a target."""
    monitoring, task = spec.spec.monitoring, spec.spec.model.task
    quality = monitoring.quality
    allowed = QUALITY_CLASSIFICATION if task == "classification" else QUALITY_REGRESSION
    if quality is None:
        evaluation = spec.spec.evaluation
        for name, gate in evaluation.gates.absolute().items() if evaluation is not None else ():
            bound = ("max", gate.max) if name in LOWER_IS_BETTER else ("min", gate.min)
            if name in allowed and bound[1] is not None:
                out.warning(
                    ("spec", "evaluation", "gates", name),
                    f"gate {name!r} has no quality SLO watching it once the model serves: add "
                    f"monitoring.quality: {{{name}: {{{bound[0]}: {bound[1]:g}}}}} to alert when live "
                    f"{name}, from feedback labels, falls short of the gate",
                    key=True,
                    code="quality-slo",
                )
        return
    for metric in (*QUALITY_CLASSIFICATION, *QUALITY_REGRESSION):
        target = getattr(quality, metric)
        if target is None:
            continue
        path = ("spec", "monitoring", "quality", metric)
        if _applies(out, path, f"quality {metric!r}", task, allowed):
            if metric in LOWER_IS_BETTER and (target.max is None or target.min is not None):
                out.error(path, f"quality {metric!r} is an error measure: give it a max (and no min)")
            elif metric not in LOWER_IS_BETTER and (target.min is None or target.max is not None):
                out.error(path, f"quality {metric!r} is a share between 0 and 1: give it a min (and no max)")
            elif metric not in LOWER_IS_BETTER and not any(
                share_can_burn(pair, quality.window, 1 - target.min)
                for pair in quality_pairs(quality.window, quality.labelDelay)
            ):
                out.warning(
                    path,
                    f"no burn-rate alert can fire for {metric} at least {target.min:g} over "
                    f"{quality.window}: even all-wrong predictions spend the budget too slowly; raise the "
                    "target or lengthen the window",
                )
        if target.class_ is not None and metric not in ("precision", "recall"):
            out.error(
                path, f"quality {metric!r} is measured over every class; only precision and recall take one"
            )
    ttl = monitoring.feedback.ttl
    if quality.labelDelay >= ttl:
        out.error(
            ("spec", "monitoring", "quality", "labelDelay"),
            f"labels arrive after {quality.labelDelay}, but predictions wait only {ttl} for them "
            "(monitoring.feedback.ttl): make the ttl longer than the label delay",
        )
    if not quality_pairs(quality.window, quality.labelDelay):
        out.error(
            ("spec", "monitoring", "quality", "window"),
            f"no burn-rate alert can watch a {quality.window} quality SLO with labels {quality.labelDelay} "
            "late: lengthen the window or shorten the label delay",
        )


def _check_alerts_can_fire(slo: Slo, out: _Collector) -> None:
    """Warn about a burn-rate alert that no outage can trigger: with a loose objective over a
    long window, burning its share of the budget in the alert's window needs more requests to
    fail than there are (the alert is still written, and its test shows it stays quiet)."""
    targets: list[tuple[str, PathKey, Percentage]] = []
    if slo.availability is not None:
        targets.append(("availability", ("availability",), slo.availability))
    if slo.latency is not None:
        targets.append(("latency", ("latency", "target"), slo.latency.target))
    for name, path, target in targets:
        severities: tuple[AlertSeverity, ...] = ("page", "ticket")
        silent = [s for s in severities if not can_fire(s, slo.window, target.budget)]
        if silent:
            # rounded up to a hundredth of a percent, so the suggestion really lets it fire
            needed = math.ceil(max(lowest_objective_that_fires(s, slo.window) for s in silent) * 10_000)
            out.warning(
                ("spec", "monitoring", "slo", *path),
                f"{name} objective {target}% over {slo.window}: its {' and '.join(silent)} burn-rate "
                f"alert can never fire, since even every request failing stays below its threshold; "
                f"an objective of {needed / 100:g}% or more (or a shorter window) lets it fire",
            )


def _applies(out: _Collector, path: PathKey, what: str, task: str, allowed: tuple[str, ...]) -> bool:
    """Whether the measure at path is one the task has; if not, an error at its key."""
    if path[-1] in allowed:
        return True
    out.error(path, f"{what} does not apply to a {task} model; use {', '.join(allowed)}", key=True)
    return False


def _check_gates(spec: ModelSpec, out: _Collector) -> None:
    evaluation = spec.spec.evaluation
    if evaluation is None:
        return
    task = spec.spec.model.task
    allowed = CLASSIFICATION_GATES if task == "classification" else REGRESSION_GATES
    for name, gate in evaluation.gates.absolute().items():
        path: PathKey = ("spec", "evaluation", "gates", name)
        if not _applies(out, path, f"gate {name!r}", task, allowed):
            continue
        if name in LOWER_IS_BETTER and gate.min is not None and gate.max is None:
            out.error(path, f"gate {name!r} is an error measure (lower is better): give it a max, not a min")
        if name not in LOWER_IS_BETTER and gate.max is not None and gate.min is None:
            out.error(path, f"gate {name!r} is a score (higher is better): give it a min, not a max")
        if name in BOUNDED_0_1:
            for bound in (gate.min, gate.max):
                if bound is not None and not 0 <= bound <= 1:
                    out.error(path, f"gate {name!r} is a fraction between 0 and 1, got {bound}")
        if name in LOWER_IS_BETTER and gate.max is not None and gate.max < 0:
            out.error(path, f"gate {name!r} cannot be negative, got max {gate.max}")
        if name == "r2" and gate.min is not None and gate.min > 1:
            out.error(path, f"gate 'r2' is at most 1 (a perfect fit), so min {gate.min} can never pass")
    for name, relative in evaluation.gates.relative.items():
        path = ("spec", "evaluation", "gates", "relative", name)
        if not _applies(out, path, f"relative gate {name!r}", task, allowed):
            continue
        if name in LOWER_IS_BETTER and relative.maxIncrease is None:
            out.error(
                path,
                f"relative gate {name!r} is an error measure (lower is better): give it a maxIncrease, "
                "not a maxDrop",
            )
        elif name not in LOWER_IS_BETTER and relative.maxDrop is None:
            out.error(
                path,
                f"relative gate {name!r} is a score (higher is better): give it a maxDrop, not a maxIncrease",
            )
        elif name in BOUNDED_0_1 and relative.allowance >= 1:
            out.error(
                path,
                f"relative gate {name!r} allows a drop of {relative.allowance:g}, but {name} is a fraction "
                "between 0 and 1: such a gate never fails",
            )
    features = {f.name for f in spec.spec.model.features}
    if evaluation.target in features:
        out.error(
            ("spec", "evaluation", "target"),
            f"evaluation target {evaluation.target!r} is also listed as an input feature",
        )


def _check_delivery(spec: ModelSpec, out: _Collector) -> None:
    """A candidate is another pinned version; a strategy has what it needs to run."""
    body = spec.spec
    candidate, rollout, model = body.candidate, body.rollout, body.model
    if candidate is not None:
        if candidate.version.text == model.version.text:
            out.error(
                ("spec", "candidate", "version"),
                f"the candidate's version {candidate.version.text} is the model's own: a candidate is "
                "another version (to roll the model out again, change spec.model)",
            )
        if candidate.sha256 == model.sha256:
            out.error(
                ("spec", "candidate", "sha256"),
                "the candidate pins the same artifact as spec.model.sha256: a candidate needs its own "
                "artifact and pin",
            )
    strategy = rollout.strategy
    if strategy != "rolling" and body.serving.runtime != "builtin":
        why = (
            "the analysis queries the metrics it exports"
            if strategy == "canary"
            else "it scores the candidate beside the stable"
        )
        out.error(
            ("spec", "rollout", "strategy"), f"strategy {strategy} needs serving.runtime: builtin ({why})"
        )
    if strategy == "canary":
        if rollout.canary is None:
            out.error(
                ("spec", "rollout", "strategy"),
                "strategy canary needs rollout.canary with its steps, such as "
                "canary: {steps: [{weight: 10, pause: 15m}, {weight: 50, pause: 30m}]}",
            )
        else:
            _check_canary(rollout.canary, out)
    if strategy == "shadow":
        if model.task == "regression" and rollout.shadow.tolerance is None:
            out.error(
                ("spec", "rollout", "strategy"),
                "strategy shadow of a regression model needs rollout.shadow.tolerance: the absolute "
                "difference up to which the candidate's answer agrees with the stable's",
            )
        if candidate is None:
            out.warning(
                ("spec", "rollout", "strategy"),
                "strategy shadow without a candidate shadows nothing: add spec.candidate",
            )


def _check_canary(canary: Canary, out: _Collector) -> None:
    # Argo Rollouts reads durations in whole seconds: 500ms would be no pause, or a busy loop.
    timed: list[tuple[PathKey, Duration | None]] = [
        (("steps", i, "pause"), step.pause) for i, step in enumerate(canary.steps)
    ]
    timed += [(("analysis", key), getattr(canary.analysis, key)) for key in ("interval", "window")]
    for path, duration in timed:
        if duration is not None and duration.milliseconds % 1000:
            out.error(
                ("spec", "rollout", "canary", *path),
                f"{duration} is not a whole number of seconds; Argo Rollouts counts in seconds",
            )
    for index in range(1, len(canary.steps)):
        before, step = canary.steps[index - 1], canary.steps[index]
        if step.weight <= before.weight:
            out.error(
                ("spec", "rollout", "canary", "steps", index, "weight"),
                f"canary weights must increase step by step: {step.weight}% after {before.weight}%",
            )
    analysis = canary.analysis
    paused = sum(step.pause.milliseconds for step in canary.steps)
    if paused < analysis.abort_possible_after.milliseconds:
        out.warning(
            ("spec", "rollout", "canary", "steps"),
            f"the steps pause {Duration.from_milliseconds(paused)} in all, but the analysis can abort "
            f"only after {analysis.abort_possible_after} (its window, then failureLimit + 1 "
            "intervals): a bad candidate would reach 100% before it is judged; lengthen the pauses",
        )
    if analysis.window is not None and analysis.window < analysis.interval:
        out.warning(
            ("spec", "rollout", "canary", "analysis", "window"),
            f"analysis window {analysis.window} is shorter than its interval {analysis.interval}: "
            "requests between two measurements are never judged",
        )
