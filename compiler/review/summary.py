"""What changed for each model and environment, in words a reviewer reads in ten seconds."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from compiler.resolve.resolved import ResolvedModel
from compiler.review.compare import FileChange
from compiler.targets.kubernetes.rollout import analysis_checks, analysis_window


@dataclass
class ModelChange:
    model: str
    environment: str
    status: str  # added | removed | changed
    details: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    directory: str = ""  # <env>/<namespace>/<model>/ in the generated tree


@dataclass(frozen=True)
class Breaking:
    model: str
    environment: str
    what: str


def _replicas(m: ResolvedModel) -> str:
    return f"{m.serving.replicas.min}..{m.serving.replicas.max}"


def _resources(m: ResolvedModel) -> dict[str, str]:
    found = {}
    for kind in ("requests", "limits"):
        values = getattr(m.serving.resources, kind)
        for name in ("cpu", "memory"):
            quantity = getattr(values, name)
            if quantity is not None:
                found[f"{name} {kind[:-1]}"] = quantity.text
    return found


def _slo(m: ResolvedModel) -> dict[str, str]:
    slo = m.monitoring.slo
    if slo is None:
        return {}
    found = {"SLO window": slo.window.text}
    if slo.availability is not None:
        found["availability SLO"] = f"{slo.availability}%"
    if slo.latency is not None:
        found["latency SLO"] = f"{slo.latency.target}% under {slo.latency.threshold.text}"
    return found


def _gates(m: ResolvedModel) -> dict[str, str]:
    if m.evaluation is None:
        return {}
    found = {}
    for name, gate in m.evaluation.gates.absolute().items():
        found[f"gate {name}"] = gate.describe()
        if m.evaluated is not None and name in m.evaluated.metrics:
            found[f"measured {name}"] = f"{m.evaluated.metrics[name]:.4g}"
    return found


def _facts(m: ResolvedModel) -> dict[str, str]:
    facts = {
        "version": m.model.version.text,
        "replicas": _replicas(m),
        "autoscaling": f"{m.serving.autoscaling.cpu}% CPU" if m.serving.autoscaling else "off",
        "image": m.image,
        "artifact": m.model.uri.text,
        "team": m.team,
        **_resources(m),
        **_slo(m),
        **_gates(m),
    }
    psi = m.monitoring.drift.psi if m.monitoring.drift else None
    if psi is not None:
        facts["drift PSI thresholds"] = f"{psi.warning:g}/{psi.critical:g}"
    return facts


# The rendered documents of model directories: "<env>/<namespace>/<model>/" -> file name -> document.
Documents = dict[str, dict[str, Any]]


def _rules(documents: Documents, directory: str) -> list[dict[str, Any]]:
    rules = documents.get(directory, {}).get("rules.yaml") or {}
    return [r for g in rules.get("groups", []) for r in g.get("rules", [])]


def _names(documents: Documents, directory: str, key: str) -> set[str]:
    return {r[key] for r in _rules(documents, directory) if key in r}


def _alert_labels(documents: Documents, directory: str) -> dict[str, dict[str, str]]:
    return {r["alert"]: r.get("labels") or {} for r in _rules(documents, directory) if "alert" in r}


def _label_changes(base_documents: Documents, head_documents: Documents, directory: str) -> list[str]:
    """Routing changes of alerts on both sides: a severity or pager label decides who is woken."""
    old, new = _alert_labels(base_documents, directory), _alert_labels(head_documents, directory)
    lines = []
    for alert in sorted(old.keys() & new.keys()):
        for label in sorted(old[alert].keys() | new[alert].keys()):
            a, b = old[alert].get(label), new[alert].get(label)
            if a != b:
                lines.append(f"alert {alert}: {label} {a or 'none'} -> {b or 'none'}")
    return lines


# --- progressive delivery in words -----------------------------------------------------------

# Facts about the version the pods serve: a delivery line that says how it moves replaces them.
_SERVED_FACTS = frozenset({"version", "artifact"})
ARROW = "→"


def _served(m: ResolvedModel) -> str:
    """The version the pods run once the change is applied (the candidate under rolling and canary)."""
    return m.model.version.text


def _spec_version(m: ResolvedModel) -> str:
    """The spec's `model` version: the stable one while a candidate is on trial."""
    return (m.stable or m.model).version.text


def _candidate(m: ResolvedModel | None) -> str | None:
    return m.candidate.version.text if m is not None and m.candidate is not None else None


def _analysis(m: ResolvedModel, documents: Documents, directory: str) -> list[str]:
    """The measurements of the canary analysis: the rendered AnalysisTemplate's metrics when there
    is one, else the checks the renderer would give it (none: no template, no analysis)."""
    template = documents.get(directory, {}).get("analysistemplate.yaml")
    if template is None:
        return list(analysis_checks(m))
    metrics = (template.get("spec") or {}).get("metrics") or []
    return [str(metric.get("name")) for metric in metrics]


def _weights(m: ResolvedModel) -> str:
    steps = m.rollout.canary.steps if m.rollout.canary is not None else []
    return f" {ARROW} ".join([*(f"{step.weight}%" for step in steps), "100%"])


def _steps(m: ResolvedModel, documents: Documents, directory: str) -> str:
    """`10% → 50% → 100%, analysis on availability, latency`: how a canary earns its traffic."""
    measured = ", ".join(_analysis(m, documents, directory))
    return f"{_weights(m)}, {f'analysis on {measured}' if measured else 'no analysis'}"


def _movement(m: ResolvedModel, before: str, documents: Documents, directory: str) -> str:
    """How traffic moves from `before` to the version the pods will serve."""
    after = _served(m)
    if m.rollout.strategy != "canary":  # rolling, and shadow's Deployment: one rolling update
        return f"rolling update {before} {ARROW} {after} (no analysis)"
    return f"canary {before} {ARROW} {after}, {_steps(m, documents, directory)}"


def _skipped_analysis(m: ResolvedModel) -> str:
    later = "add the candidate" if m.candidate is not None else "change the version"
    return (
        f"warning: the Rollout is new in this change, and Argo Rollouts deploys a new Rollout's "
        f"first template at once, without steps: {_served(m)} gets all traffic and the analysis "
        f"is skipped. Switch to canary in one change and {later} in the next"
    )


def _delivery(
    old: ResolvedModel | None, new: ResolvedModel, documents: Documents, directory: str
) -> tuple[list[str], bool]:
    """What the change does to the served version and the candidate, in words, and whether those
    words already say how the served version moves (then the version facts would repeat them).
    Promoting and aborting are ordinary spec edits: this is where they read as such."""
    lines: list[str] = []
    was, now = (old.rollout.strategy if old is not None else None), new.rollout.strategy
    before = _served(old) if old is not None else None
    had, candidate = _candidate(old), _candidate(new)
    explained = False
    if old is not None and had is not None and had != candidate:
        if candidate is not None:
            lines.append(f"candidate {had} replaced by {candidate}")
        elif _spec_version(new) == had:
            lines.append(f"promoted {had} (was the candidate)")
            explained = before == _served(new)
        elif _spec_version(new) == _spec_version(old) and before != _served(new):
            lines.append(f"candidate {had} removed: back to {_served(new)}")
            explained = True
        else:
            lines.append(f"candidate {had} removed")
    if candidate is not None and now == "shadow" and (had != candidate or was != now):
        stable = _spec_version(new)
        lines.append(f"shadow {candidate} beside {stable} (answers from {stable})")
    if before is not None and before != _served(new) and not explained:
        if now == "canary" or candidate is not None or had is not None:  # else: the version fact
            lines.append(_movement(new, before, documents, directory))
            explained = True
    elif old is None and candidate is not None and now != "shadow":
        lines.append(_movement(new, _spec_version(new), documents, directory))
    if old is not None and was != now:
        change = f"strategy {was} {ARROW} {now}"
        if now == "canary" and not explained:  # no version moves yet: say how the next one will
            change += f" (the next version goes {_steps(new, documents, directory)})"
        lines.insert(0, change)
    new_rollout = now == "canary" and was != "canary"
    if new_rollout and _served(new) != before and (old is not None or candidate is not None):
        lines.append(_skipped_analysis(new))
    return lines, explained


def _rollout_settings(m: ResolvedModel, documents: Documents, directory: str) -> dict[str, str]:
    """The settings of the model's strategy, for comparing two sides that use the same one."""
    rollout = m.rollout
    if rollout.strategy == "canary" and rollout.canary is not None:
        analysis = rollout.canary.analysis
        steps = ", ".join(f"{step.weight}% for {step.pause.text}" for step in rollout.canary.steps)
        return {
            "canary steps": steps,
            "canary analysis on": ", ".join(_analysis(m, documents, directory)) or "none",
            "canary analysis interval": analysis.interval.text,
            "canary analysis window": analysis_window(m).text,
            "canary failure limit": str(analysis.failureLimit),
            "canary minimum requests": str(analysis.minRequests),
        }
    if rollout.strategy == "shadow":
        shadow = rollout.shadow
        tolerance = "none" if shadow.tolerance is None else f"{shadow.tolerance:g}"
        return {
            "shadow max disagreement": f"{shadow.maxDisagreement:g}",
            "shadow tolerance": tolerance,
            "shadow queue size": str(shadow.queueSize),
            "shadow minimum comparisons": str(shadow.minComparisons),
        }
    return {}


def _setting_changes(
    old: ResolvedModel,
    new: ResolvedModel,
    base_documents: Documents,
    head_documents: Documents,
    directory: str,
) -> list[str]:
    """Changed settings of a strategy both sides use (a new strategy is described whole)."""
    if old.rollout.strategy != new.rollout.strategy:
        return []
    a = _rollout_settings(old, base_documents, directory)
    b = _rollout_settings(new, head_documents, directory)
    return [f"{name} {a[name]} {ARROW} {b[name]}" for name in b if name in a and a[name] != b[name]]


def summarise(
    base: list[ResolvedModel],
    head: list[ResolvedModel],
    base_documents: Documents,
    head_documents: Documents,
    changes: list[FileChange],
) -> list[ModelChange]:
    """Per model and environment, what changed in words; models absent from both lists, or the
    same with no file changed, say nothing (so the lists may hold the changed models alone)."""
    before = {(m.environment, m.name): m for m in base}
    after = {(m.environment, m.name): m for m in head}
    by_directory: dict[str, list[str]] = {}
    for change in changes:
        by_directory.setdefault(change.path.rsplit("/", 1)[0] + "/", []).append(change.path)
    result: list[ModelChange] = []
    for key in sorted(before.keys() | after.keys()):
        env, name = key
        old, new = before.get(key), after.get(key)
        directory = f"{env}/{(new or old).namespace}/{name}/"  # type: ignore[union-attr]
        files = by_directory.get(directory, [])
        if old is None:
            assert new is not None
            delivery, _ = _delivery(None, new, head_documents, directory)
            added = [f"version {_spec_version(new)}", *delivery]
            result.append(ModelChange(name, env, "added", added, files, directory))
            continue
        if new is None:
            was = f"was version {_spec_version(old)}"
            if old.candidate is not None:
                was += f", candidate {old.candidate.version.text}"
            result.append(ModelChange(name, env, "removed", [was], files, directory))
            continue
        if not files and old == new:
            continue  # same inputs, same output: nothing to say
        details, explained = _delivery(old, new, head_documents, directory)
        old_facts, new_facts = _facts(old), _facts(new)
        for fact in list(dict.fromkeys([*old_facts, *new_facts])):
            a, b = old_facts.get(fact), new_facts.get(fact)
            if a != b and not (explained and fact in _SERVED_FACTS):
                details.append(f"{fact} {a or 'none'} -> {b or 'none'}")
        details += _setting_changes(old, new, base_documents, head_documents, directory)
        if directory + "rules.yaml" in files:
            old_alerts, new_alerts = (
                _names(base_documents, directory, "alert"),
                _names(head_documents, directory, "alert"),
            )
            details += [f"alert added: {a}" for a in sorted(new_alerts - old_alerts)]
            details += [f"alert removed: {a}" for a in sorted(old_alerts - new_alerts)]
            details += _label_changes(base_documents, head_documents, directory)
        if details or files:
            if not details:
                details.append("generated files changed (compiler or project defaults)")
            result.append(ModelChange(name, env, "changed", details, files, directory))
    return result


_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{")


def series_used(documents: Iterable[tuple[str, dict[str, Any]]]) -> set[str]:
    """Series that rule files and dashboards (file name, document) select."""
    used: set[str] = set()
    for name, document in documents:
        if name.endswith("rules.yaml"):
            for group in (document or {}).get("groups", []):
                for rule in group.get("rules", []):
                    used |= set(_SELECTOR.findall(rule.get("expr", "")))
        elif name.endswith("dashboard.json"):
            for panel in document.get("panels", []):
                for target in panel.get("targets", []):
                    used |= set(_SELECTOR.findall(target.get("expr", "")))
    return used


def _service(documents: Documents, directory: str) -> dict[str, Any] | None:
    service = documents.get(directory, {}).get("service.yaml")
    if service is None:
        return None
    spec: dict[str, Any] = service.get("spec", {})
    return spec


def breaking_changes(
    summary: list[ModelChange],
    base_documents: Documents,
    head_documents: Documents,
    series_in: Callable[[str], set[str]],
) -> list[Breaking]:
    """Changes that break someone downstream, even when every file is valid. `series_in` gives
    the series the head side's rules and dashboards use in an environment (asked only when a
    recording rule goes away)."""
    found: list[Breaking] = []
    used_in: dict[str, set[str]] = {}  # per environment, computed only when a record goes away
    for change in summary:
        model, env, directory = change.model, change.environment, change.directory
        if change.status == "removed":
            found.append(Breaking(model, env, "model removed: its alerts, dashboard and Service go away"))
            continue
        if change.status != "changed":
            continue
        rules = directory + "rules.yaml"
        removed_alerts = (
            _names(base_documents, directory, "alert") - _names(head_documents, directory, "alert")
            if rules in change.files
            else set()
        )
        for alert in sorted(removed_alerts):
            found.append(
                Breaking(
                    model,
                    env,
                    f"alert {alert} removed or renamed: silences and routes keyed on it stop matching",
                )
            )
        gone = (
            _names(base_documents, directory, "record") - _names(head_documents, directory, "record")
            if rules in change.files
            else set()
        )
        if gone and env not in used_in:
            used_in[env] = series_in(env)
        for record in sorted(gone & used_in.get(env, set())):
            found.append(
                Breaking(
                    model, env, f"recording rule {record} removed while a dashboard or alert still uses it"
                )
            )
        old_board, new_board = (
            base_documents.get(directory, {}).get("dashboard.json"),
            head_documents.get(directory, {}).get("dashboard.json"),
        )
        if old_board and new_board and old_board["uid"] != new_board["uid"]:
            found.append(Breaking(model, env, "dashboard uid changed: links and bookmarks break"))
        old_service, new_service = (
            _service(base_documents, directory),
            _service(head_documents, directory),
        )
        if old_service and new_service:
            if old_service.get("ports") != new_service.get("ports"):
                found.append(
                    Breaking(model, env, "Service ports changed: clients and scrapes on the old port break")
                )
            if old_service.get("selector") != new_service.get("selector"):
                found.append(
                    Breaking(
                        model, env, "Service selector changed: traffic may reach no pod during the rollout"
                    )
                )
    return found
