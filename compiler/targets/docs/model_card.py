"""The model card: what a reviewer or on-call engineer needs to know about a model, in Markdown."""

from __future__ import annotations

from functools import cache
from importlib import resources

from jinja2 import StrictUndefined, Template

from compiler.resolve.resolved import ResolvedModel
from compiler.targets.links import dashboard_url, model_dashboard_uid
from compiler.targets.prometheus.rules import AlertRule
from compiler.templating import sandboxed_templates


@cache
def _template() -> Template:
    source = resources.files("compiler.targets.docs").joinpath("templates/model-card.md.j2").read_text()
    name = "modelops/model-card.md.j2"
    templates = sandboxed_templates(
        {name: source}, undefined=StrictUndefined, trim_blocks=False, keep_trailing_newline=True
    )
    return templates[name]


def _gates(model: ResolvedModel) -> list[dict[str, str]]:
    record = model.evaluated
    if model.evaluation is None or record is None:
        return []
    rows = []
    for name, gate in model.evaluation.gates.items():
        measured = record.metrics.get(name)
        rows.append(
            {
                "name": name,
                "required": gate.describe(),
                "measured": "not measured" if measured is None else f"{measured:.4g}",
                "result": "pass" if gate.passes(measured) else "**FAIL**",
            }
        )
    return rows


def model_card(model: ResolvedModel, alerts: list[AlertRule]) -> str:
    text = _template().render(
        model=model,
        record=model.evaluated,
        gates=_gates(model),
        slo=model.monitoring.slo,
        alerts=[{"name": a.alert, "severity": a.labels["severity"]} for a in alerts],
        dashboard_url=dashboard_url(model),
        dashboard_uid=model_dashboard_uid(model.environment, model.name),
    )
    return "\n".join(line.rstrip() for line in text.splitlines()).strip() + "\n"
