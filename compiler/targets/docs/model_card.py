"""The model card: what a reviewer or on-call engineer needs to know about a model, in Markdown."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from jinja2 import StrictUndefined, Template

from compiler.resolve.resolved import ResolvedModel
from compiler.spec.model import ModelArtifact
from compiler.spec.records import EvaluationRecord
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
    for name, gate in model.evaluation.gates.absolute().items():
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


@dataclass(frozen=True)
class _Side:
    """One of the two versions of a spec with a candidate, and its evaluation record."""

    artifact: ModelArtifact
    record: EvaluationRecord | None


def _sides(model: ResolvedModel) -> tuple[_Side, _Side] | None:
    """The stable version and the candidate, when the spec has a candidate."""
    if model.shadow is not None:
        return _Side(model.model, model.evaluated), _Side(model.shadow, model.shadow_evaluated)
    if model.stable is not None:
        return _Side(model.stable, model.stable_evaluated), _Side(model.model, model.evaluated)
    return None


def _rollout(model: ResolvedModel) -> dict[str, object] | None:
    """How the version reaches traffic; None for a straight rollout without a candidate, which
    the card does not mention (as before there were strategies)."""
    rollout, sides = model.rollout, _sides(model)
    if sides is None and rollout.strategy == "rolling":
        return None
    steps = rollout.canary.steps if rollout.strategy == "canary" and rollout.canary is not None else []
    return {
        "strategy": rollout.strategy,
        "stable": sides[0].artifact if sides is not None else None,
        "candidate": sides[1].artifact if sides is not None else None,
        "steps": ", ".join(f"{step.weight}% for {step.pause.text}" for step in steps),
        "shadow": rollout.shadow,
        "relative": _relative(model, sides),
    }


def _relative(model: ResolvedModel, sides: tuple[_Side, _Side] | None) -> list[dict[str, str]] | None:
    """The candidate against the stable on the holdout; None until both are evaluated."""
    if model.evaluation is None or sides is None or not model.evaluation.gates.relative:
        return []
    stable, candidate = sides[0].record, sides[1].record
    if stable is None or candidate is None:
        return None
    rows = []
    for name, gate in model.evaluation.gates.relative.items():
        before, after = stable.metrics.get(name), candidate.metrics.get(name)
        rows.append(
            {
                "name": name,
                "allowed": gate.describe(),
                "stable": "not measured" if before is None else f"{before:.4g}",
                "candidate": "not measured" if after is None else f"{after:.4g}",
                "result": "pass" if gate.passes(before, after) else "**FAIL**",
            }
        )
    return rows


def model_card(model: ResolvedModel, alerts: list[AlertRule]) -> str:
    text = _template().render(
        model=model,
        record=model.evaluated,
        gates=_gates(model),
        rollout=_rollout(model),
        slo=model.monitoring.slo,
        alerts=[{"name": a.alert, "severity": a.labels["severity"]} for a in alerts],
        dashboard_url=dashboard_url(model),
        dashboard_uid=model_dashboard_uid(model.environment, model.name),
    )
    return "\n".join(line.rstrip() for line in text.splitlines()).strip() + "\n"
