"""ResolvedModel -> Grafana dashboard JSON, built with grafana-foundation-sdk (pure).

The SDK checks single fields; the whole dashboard (grid overlaps, uids) is ours to check,
so panels are placed by one small grid cursor and tests verify no two overlap.
"""

from __future__ import annotations

import operator
from decimal import Decimal
from typing import Any

import orjson
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from compiler.metrics import contract
from compiler.metrics.contract import le_label, sli_error_ratio
from compiler.resolve.resolved import ResolvedModel
from compiler.spec.slo import BURN_RATE_PANEL_WINDOWS
from compiler.targets.links import model_dashboard_uid, overview_dashboard_uid
from compiler.targets.prometheus.promql import number, percent, string_literal
from compiler.targets.prometheus.quality_rules import pairs_of, quality_slos
from compiler.targets.prometheus.rules import slos
from compiler.targets.prometheus.shadow_rules import window as shadow_window

DATASOURCE = models.DataSourceRef(type_val="prometheus", uid="${datasource}")
GRID_WIDTH = 24
# The Grafana variable is named after the environment it picks; its value is that environment's
# namespace, which every query selects on.
ENVIRONMENT_VARIABLE = "environment"
RATE = "$__rate_interval"
# Parts every dashboard has alike, built once: a builder's `build()` hands back the same model
# object each time, which is safe to share because nothing edits a panel once it is built, and
# `_to_dict` writes every occurrence out as a fresh copy.
_LEGEND = (
    common_builders.VizLegendOptions()
    .show_legend(True)
    .display_mode(common_models.LegendDisplayMode.LIST)
    .placement(common_models.LegendPlacement.BOTTOM)
)
_THRESHOLD_LINES = common_builders.GraphThresholdsStyleConfig().mode(
    common_models.GraphThresholdsStyleMode.LINE
)
_DATASOURCE_VARIABLE = dash.DatasourceVariable("datasource").label("Data source").type("prometheus")


class _Grid:
    """Places panels left to right, top to bottom, so they never overlap."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.row_height = 0

    def row(self) -> models.GridPos:
        self.newline()
        position = models.GridPos(h=1, w=GRID_WIDTH, x=0, y=self.y)
        self.y += 1
        return position

    def place(self, w: int, h: int) -> models.GridPos:
        if self.x + w > GRID_WIDTH:
            self.newline()
        position = models.GridPos(h=h, w=w, x=self.x, y=self.y)
        self.x += w
        self.row_height = max(self.row_height, h)
        return position

    def newline(self) -> None:
        if self.x:
            self.y += self.row_height
        self.x = 0
        self.row_height = 0


def _query(expr: str, legend: str = "", *, instant: bool = False, ref: str = "A") -> prometheus.Dataquery:
    query = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    if legend:
        query = query.legend_format(legend)
    if instant:
        query = query.instant().format(PromQueryFormat.TABLE)
    return query


def _thresholds(*steps: tuple[float | None, str]) -> dash.ThresholdsConfig:
    return (
        dash.ThresholdsConfig()
        .mode(models.ThresholdsMode.ABSOLUTE)
        .steps([models.Threshold(value=value, color=color) for value, color in steps])
    )


# An error budget's colours, alike on every dashboard (shared as _LEGEND is).
_BUDGET_THRESHOLDS = _thresholds((None, "red"), (0.0, "orange"), (0.25, "green"))


def _timeseries(
    title: str, queries: list[prometheus.Dataquery], unit: str, grid: _Grid, w: int = 12, h: int = 8
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .unit(unit)
        .grid_pos(grid.place(w, h))
        .legend(_LEGEND)
    )
    for index, query in enumerate(queries):
        panel = panel.with_target(query.ref_id(chr(ord("A") + index)))
    return panel


def _with_lines(panel: timeseries.Panel, *steps: tuple[float | None, str]) -> timeseries.Panel:
    """The panel with its thresholds drawn as lines: an SLO threshold, an alert's limit."""
    return panel.thresholds(_thresholds(*steps)).thresholds_style(_THRESHOLD_LINES)


def _stat(
    title: str,
    expr: str,
    unit: str,
    grid: _Grid,
    thresholds: dash.ThresholdsConfig,
    size: tuple[int, int] = (6, 5),
) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .unit(unit)
        .grid_pos(grid.place(*size))
        .thresholds(thresholds)
        .with_target(_query(expr))
    )


def _variables(board: dash.Dashboard, environments: list[tuple[str, str]], current: str) -> dash.Dashboard:
    """Datasource, and environment (shown by name, its value the namespace queries select)."""
    namespace = dict(environments)[current]
    return board.with_variable(_DATASOURCE_VARIABLE).with_variable(
        dash.CustomVariable(ENVIRONMENT_VARIABLE)
        .label("Environment")
        .values(", ".join(f"{name} : {ns}" for name, ns in environments))
        .current(models.VariableOption(selected=True, text=current, value=namespace))
    )


def _selector(metric: str, model: str, **extra: str) -> str:
    parts = [f"model={string_literal(model)}", f'namespace="${ENVIRONMENT_VARIABLE}"']
    parts += [f"{name}{value}" for name, value in extra.items()]
    return metric + "{" + ",".join(parts) + "}"


def _slo_labels(model: str, slo: str) -> str:
    """The matchers of one SLO's recorded series, in the environment the dashboard shows."""
    return f'model={string_literal(model)},namespace="${ENVIRONMENT_VARIABLE}",slo="{slo}"'


def _budget_left(slo: str, labels: str, grid: _Grid) -> stat.Panel:
    """An SLO's error budget left (availability, latency or quality alike): orange under a quarter."""
    return _stat(
        f"{slo.capitalize()} error budget remaining",
        f"{contract.ERROR_BUDGET_REMAINING}{{{labels}}}",
        "percentunit",
        grid,
        _BUDGET_THRESHOLDS,
    )


def model_dashboard(model: ResolvedModel, environments: list[tuple[str, str]]) -> dict[str, Any]:
    """The per-model dashboard: traffic, latency against the SLO, budget, drift, predictions.
    Plain data as orjson reads it (_to_dict), so no float in it is NaN or infinite."""
    name = model.name
    grid = _Grid()
    board = (
        dash.Dashboard(f"{name} ({model.environment})")
        .uid(model_dashboard_uid(model.environment, name))
        .description(model.description or f"Serving and quality of model {name}")
        .tags(["modelops", model.team, model.environment])
        .editable()
        .refresh("1m")
        .time("now-6h", "now")
        .timezone("browser")
    )
    board = _variables(board, environments, model.environment)
    board = _rollout_panels(board, model, grid)
    requests = contract.REQUESTS.total
    duration = contract.REQUEST_DURATION

    board = board.with_row(dash.Row("Traffic and errors").grid_pos(grid.row()))
    board = board.with_panel(
        _timeseries(
            "Requests per second by status code",
            [_query(f"sum by (code) (rate({_selector(requests, name)}[{RATE}]))", "{{code}}")],
            "reqps",
            grid,
        )
    )
    server_errors = _selector(requests, name, code='=~"5.."')
    errors = f"sum(rate({server_errors}[{RATE}]))"
    board = board.with_panel(
        _timeseries(
            "Error ratio (5xx) and invalid-input ratio",
            [
                _query(f"{errors} / sum(rate({_selector(requests, name)}[{RATE}]))", "5xx"),
                _query(
                    f"sum(rate({_selector(contract.INVALID_INPUTS.total, name)}[{RATE}])) "
                    f"/ sum(rate({_selector(requests, name)}[{RATE}]))",
                    "invalid input",
                ),
            ],
            "percentunit",
            grid,
        )
    )

    board = board.with_row(dash.Row("Latency").grid_pos(grid.row()))
    latency_slo = model.monitoring.slo.latency if model.monitoring.slo else None
    quantiles = [
        _query(
            f"histogram_quantile({q}, sum by (le) (rate({_selector(duration.bucket, name)}[{RATE}])))",
            f"p{int(q * 100)}",
        )
        for q in (0.5, 0.9, 0.99)
    ]
    latency_panel = _timeseries("Latency quantiles", quantiles, "s", grid, w=16)
    if latency_slo is not None:
        latency_panel = _with_lines(latency_panel, (None, "green"), (latency_slo.threshold.seconds, "red"))
        latency_panel = latency_panel.description(
            f"The red line is the SLO threshold, {latency_slo.threshold}."
        )
    board = board.with_panel(latency_panel)
    if latency_slo is not None:
        fast = _selector(duration.bucket, name, le=f'="{le_label(latency_slo.threshold.seconds)}"')
        board = board.with_panel(
            _stat(
                f"Requests under {latency_slo.threshold} (range)",
                f"sum(increase({fast}[$__range])) "
                f"/ sum(increase({_selector(duration.count, name)}[$__range]))",
                "percentunit",
                grid,
                _thresholds((None, "red"), (latency_slo.target.ratio, "green")),
                size=(8, 8),
            )
        )

    model_slos = slos(model)
    if model_slos:
        period = model.monitoring.slo.window.text  # type: ignore[union-attr]
        board = board.with_row(dash.Row(f"SLO compliance and error budget ({period})").grid_pos(grid.row()))
        for slo in model_slos:
            labels = _slo_labels(name, slo.name)
            board = board.with_panel(
                _stat(
                    f"{slo.name.capitalize()} over {period} (objective {slo.target}%)",
                    f"1 - {contract.SLO_PERIOD_ERROR_RATIO}{{{labels}}}",
                    "percentunit",
                    grid,
                    _thresholds((None, "red"), (slo.objective, "green")),
                )
            )
            board = board.with_panel(_budget_left(slo.name, labels, grid))
        for slo in model_slos:
            labels, budget = _slo_labels(name, slo.name), number(slo.budget)
            board = board.with_panel(
                _timeseries(
                    f"{slo.name.capitalize()} burn rate (1 spends the budget in exactly {period})",
                    [
                        _query(f"{sli_error_ratio(w.text)}{{{labels}}} / {budget}", w.text)
                        for w in BURN_RATE_PANEL_WINDOWS
                    ],
                    "none",
                    grid,
                )
            )

    board = _quality_panels(board, model, grid)

    window = model.monitoring.drift.window.text if model.monitoring.drift else "1h"
    board = board.with_row(dash.Row("Input drift").grid_pos(grid.row()))
    drift_panel = _timeseries(
        f"PSI of inputs and predictions over the last {window}, all pods (none: too few samples)",
        [
            _query(_selector(contract.FEATURE_DRIFT.psi, name), "{{feature}}"),
            _query(_selector(contract.PREDICTION_DRIFT.psi, name), "predictions", ref="B"),
        ],
        "none",
        grid,
        w=14,
    )
    psi = model.monitoring.drift.psi if model.monitoring.drift else None
    if psi is not None:
        drift_panel = _with_lines(
            drift_panel, (None, "green"), (psi.warning, "orange"), (psi.critical, "red")
        )
    board = board.with_panel(drift_panel)
    board = board.with_panel(
        _timeseries(
            f"Samples in the last {window} (PSI needs the guard's count)",
            [
                _query(_selector(contract.FEATURE_DRIFT.samples, name), "{{feature}}"),
                _query(_selector(contract.PREDICTION_DRIFT.samples, name), "predictions", ref="B"),
                _query(f"max({_selector(contract.FEATURE_DRIFT.min_samples, name)})", "guard", ref="C"),
            ],
            "short",
            grid,
            w=10,
        )
    )

    board = board.with_row(dash.Row("Predictions and replicas").grid_pos(grid.row()))
    if model.model.task == "classification":
        predictions = _timeseries(
            "Predictions per second by class",
            [
                _query(
                    f"sum by (class) (rate({_selector(contract.PREDICTIONS.total, name)}[{RATE}]))",
                    "class {{class}}",
                )
            ],
            "reqps",
            grid,
        )
    else:
        bucket = _selector(contract.PREDICTION_VALUE.bucket, name)
        predictions = _timeseries(
            "Predicted value quantiles",
            [
                _query(f"histogram_quantile({q}, sum by (le) (rate({bucket}[{RATE}])))", f"p{int(q * 100)}")
                for q in (0.1, 0.5, 0.9)
            ],
            "none",
            grid,
        )
    board = board.with_panel(predictions)
    board = board.with_panel(
        _timeseries(
            "Serving pods by model version",
            [_query(f"count by (version) ({_selector(contract.MODEL_INFO.info, name)})", "{{version}}")],
            "none",
            grid,
        )
    )
    return _to_dict(board)


def _rollout_title(model: ResolvedModel) -> str:
    """The strategy, and the versions it moves between (or watches side by side)."""
    strategy = model.rollout.strategy
    if model.shadow is not None:
        return f"Rollout ({strategy}: {model.shadow.version.text} beside {model.model.version.text})"
    if model.stable is not None:
        return f"Rollout ({strategy}: {model.stable.version.text} → {model.model.version.text})"
    return f"Rollout ({strategy})"


def _traffic_note(model: ResolvedModel) -> str:
    canary = model.rollout.canary
    if model.rollout.strategy == "canary" and canary is not None:
        steps = " → ".join(f"{step.weight}% for {step.pause.text}" for step in canary.steps)
        return f"The candidate's share is its canary weight as users get it: {steps}, then 100%."
    if model.shadow is not None:
        return "The shadow candidate answers no request: it scores copies, shown below."
    return "Each version's share of the requests answered."


def _rollout_panels(board: dash.Dashboard, model: ResolvedModel, grid: _Grid) -> dash.Dashboard:
    """While a version changes (canary, shadow, or any candidate): each version's share of the
    traffic, its errors and latency against the SLOs, and how a shadow agrees; one row, no
    panels otherwise."""
    if model.rollout.strategy == "rolling" and model.candidate is None:
        return board
    name = model.name
    requests = _selector(contract.REQUESTS.total, name)
    server_errors = _selector(contract.REQUESTS.total, name, code='=~"5.."')
    by_version = f"sum by (version) (rate({requests}[{RATE}]))"
    board = board.with_row(dash.Row(_rollout_title(model)).grid_pos(grid.row()))
    share = _timeseries(
        "Traffic share by version",
        [_query(f"{by_version} / scalar(sum(rate({requests}[{RATE}])))", "{{version}}")],
        "percentunit",
        grid,
        w=8,
    )
    board = board.with_panel(share.description(_traffic_note(model)))
    errors = _timeseries(
        "Error ratio (5xx) by version",
        [_query(f"sum by (version) (rate({server_errors}[{RATE}])) / {by_version}", "{{version}}")],
        "percentunit",
        grid,
        w=8,
    )
    slo = model.monitoring.slo
    if slo is not None and slo.availability is not None:
        errors = _with_lines(errors, (None, "green"), (slo.availability.budget, "red")).description(
            f"The red line is the availability SLO's error budget ({slo.availability}%): a version "
            "above it spends the budget faster than the SLO allows."
        )
    board = board.with_panel(errors)
    latency = slo.latency if slo is not None else None
    quantile, shown = (latency.target.ratio, f"p{latency.target}") if latency is not None else (0.99, "p99")
    bucket = _selector(contract.REQUEST_DURATION.bucket, name)
    slow = _timeseries(
        f"Latency {shown} by version",
        [
            _query(
                f"histogram_quantile({number(quantile)}, sum by (version, le) (rate({bucket}[{RATE}])))",
                "{{version}}",
            )
        ],
        "s",
        grid,
        w=8,
    )
    if latency is not None:
        slow = _with_lines(slow, (None, "green"), (latency.threshold.seconds, "red")).description(
            f"The latency SLO wants {latency.target}% of requests within {latency.threshold} (the red "
            "line): a version above it misses the SLO."
        )
    board = board.with_panel(slow)
    return _shadow_panels(board, model, grid)


def _shadow_panels(board: dash.Dashboard, model: ResolvedModel, grid: _Grid) -> dash.Dashboard:
    """A shadow candidate's agreement with the stable model, the rows it compared and the
    requests it dropped, and (regressors) how far apart the two predictions are."""
    if model.shadow is None:
        return board
    name, stable, shadow = model.name, model.model.version.text, model.rollout.shadow
    comparisons = contract.SHADOW_COMPARISONS.total
    agreed = _selector(comparisons, name, outcome='="agree"')
    compared = f"sum by (candidate) (rate({_selector(comparisons, name)}[{RATE}]))"
    tolerance = shadow.tolerance if model.model.task == "regression" else None
    width = GRID_WIDTH // (2 if tolerance is None else 3)
    agreement = _timeseries(
        f"Shadow agreement with {stable}",
        [_query(f"sum by (candidate) (rate({agreed}[{RATE}])) / {compared}", "{{candidate}}")],
        "percentunit",
        grid,
        w=width,
    )
    limit = float(1 - Decimal(repr(shadow.maxDisagreement)))
    board = board.with_panel(
        _with_lines(agreement, (None, "red"), (limit, "green")).description(
            f"Share of the compared rows where the candidate agreed with {stable}; rows it failed to "
            f"score count against it. The alert fires when more than {percent(shadow.maxDisagreement)}% "
            f"disagree over {shadow_window(model).text}, once {shadow.minComparisons} rows are compared."
        )
    )
    dropped = _selector(contract.SHADOW_DROPPED.total, name)
    board = board.with_panel(
        _timeseries(
            "Shadow rows compared and requests dropped per second",
            [
                _query(f"sum by (outcome) (rate({_selector(comparisons, name)}[{RATE}]))", "{{outcome}}"),
                _query(f"sum(rate({dropped}[{RATE}]))", "dropped (queue full)"),
            ],
            "reqps",
            grid,
            w=width,
        )
    )
    if tolerance is None:
        return board
    difference = _selector(contract.SHADOW_DIFFERENCE.bucket, name)
    spread = _timeseries(
        f"Absolute difference from {stable}'s predictions",
        [
            _query(f"histogram_quantile({q}, sum by (le) (rate({difference}[{RATE}])))", f"p{int(q * 100)}")
            for q in (0.5, 0.9, 0.99)
        ],
        "none",
        grid,
        w=width,
    )
    return board.with_panel(
        _with_lines(spread, (None, "green"), (tolerance, "red")).description(
            f"Rows further apart than the tolerance, {number(tolerance)} (the red line), disagree."
        )
    )


def _quality_panels(board: dash.Dashboard, model: ResolvedModel, grid: _Grid) -> dash.Dashboard:
    """Quality SLOs from feedback: the period's value against the objective, the budget left,
    labels received, and burn rates (1 spends the budget in exactly the period)."""
    quality = model.monitoring.quality
    found = quality_slos(model)
    if quality is None or not found:
        return board
    name, period = model.name, quality.window.text
    board = board.with_row(dash.Row(f"Quality from feedback labels ({period})").grid_pos(grid.row()))
    for slo in found:
        labels = _slo_labels(name, slo.metric)
        error = f"{contract.SLO_PERIOD_ERROR_RATIO}{{{labels}}}"
        if slo.metric == "rmse":
            value, unit, steps = f"sqrt({error})", "none", ((None, "green"), (slo.objective, "red"))
        elif slo.metric == "mae":
            value, unit, steps = error, "none", ((None, "green"), (slo.objective, "red"))
        else:
            value, unit, steps = f"1 - {error}", "percentunit", ((None, "red"), (slo.objective, "green"))
        board = board.with_panel(
            _stat(f"{slo.describe.capitalize()} over {period}", value, unit, grid, _thresholds(*steps))
        )
        board = board.with_panel(_budget_left(slo.metric, labels, grid))
        windows, budget = pairs_of(quality), number(slo.budget)
        board = board.with_panel(
            _timeseries(
                f"{slo.metric.capitalize()} burn rate and labels received (guard: {quality.minFeedback})",
                [
                    _query(
                        f"{sli_error_ratio(p.long.text)}{{{labels}}} / {budget}",
                        p.long.text,
                        ref=ref,
                    )
                    for p, ref in zip(windows, "ABCD", strict=False)
                ]
                + [_query(f"{contract.quality_events(windows[0].long.text)}{{{labels}}}", "labels", ref="E")],
                "none",
                grid,
            )
        )
    return board


def overview_dashboard(
    environment: str, namespace: str, model_count: int, environments: list[tuple[str, str]]
) -> dict[str, Any]:
    """One page per environment: every model's SLO status and error budget (plain data, as
    model_dashboard's)."""
    grid = _Grid()
    board = (
        dash.Dashboard(f"Model SLOs ({environment})")
        .uid(overview_dashboard_uid(environment))
        .description("SLO status of every model compiled by modelops in this environment")
        .tags(["modelops", environment])
        .editable()
        .refresh("1m")
        .time("now-24h", "now")
        .timezone("browser")
    )
    board = _variables(board, environments, environment)
    scope = f'namespace="${ENVIRONMENT_VARIABLE}"'
    board = board.with_row(dash.Row(f"{model_count} models").grid_pos(grid.row()))
    board = board.with_panel(
        table.Panel()
        .title("SLO status by model")
        .datasource(DATASOURCE)
        .grid_pos(grid.place(24, 10))
        .unit("percentunit")
        .with_target(_query(f"1 - {contract.SLO_PERIOD_ERROR_RATIO}{{{scope}}}", instant=True, ref="A"))
        .with_target(_query(f"{contract.ERROR_BUDGET_REMAINING}{{{scope}}}", instant=True, ref="B"))
        .with_target(_query(f"{contract.SLO_OBJECTIVE}{{{scope}}}", instant=True, ref="C"))
    )
    board = board.with_panel(
        _timeseries(
            "Error budget remaining",
            [_query(f"{contract.ERROR_BUDGET_REMAINING}{{{scope}}}", "{{model}} {{slo}}")],
            "percentunit",
            grid,
            w=24,
        )
    )
    return _to_dict(board)


_SDK_TO_JSON = operator.methodcaller("to_json")


def _to_dict(board: dash.Dashboard) -> dict[str, Any]:
    """The built dashboard as plain data, as the SDK's JSON encoder would write it (each SDK
    object through its `to_json`, enums as their values). orjson does the walk in C: a third
    of a dashboard's cost was this conversion through `json`. The `default` it calls for each
    of a dashboard's ~200 SDK objects is a C callable too (a value without `to_json` fails as
    not JSON serializable). orjson would write a NaN as null, but no number in a dashboard can
    be one: the spec's numbers are checked finite."""
    result: dict[str, Any] = orjson.loads(orjson.dumps(board.build(), default=_SDK_TO_JSON))
    return result
