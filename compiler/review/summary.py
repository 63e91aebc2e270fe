"""What changed for each model and environment, in words a reviewer reads in ten seconds."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from compiler.resolve.resolved import ResolvedModel
from compiler.review.compare import FileChange


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
    for name, gate in m.evaluation.gates.items():
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
            added = ModelChange(name, env, "added", [f"version {new.model.version.text}"], files, directory)  # type: ignore[union-attr]
            result.append(added)
            continue
        if new is None:
            result.append(
                ModelChange(name, env, "removed", [f"was version {old.model.version.text}"], files, directory)
            )
            continue
        if not files and old == new:
            continue  # same inputs, same output: nothing to say
        details = []
        old_facts, new_facts = _facts(old), _facts(new)
        for fact in list(dict.fromkeys([*old_facts, *new_facts])):
            a, b = old_facts.get(fact), new_facts.get(fact)
            if a != b:
                details.append(f"{fact} {a or 'none'} -> {b or 'none'}")
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
