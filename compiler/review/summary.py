"""What changed for each model and environment, in words a reviewer reads in ten seconds."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

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


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _names(tree: dict[str, bytes], path: str, key: str) -> set[str]:
    content = tree.get(path)
    if content is None:
        return set()
    rules = yaml.load(content, Loader=_Loader) or {}
    return {r[key] for g in rules.get("groups", []) for r in g.get("rules", []) if key in r}


def summarise(
    base: list[ResolvedModel],
    head: list[ResolvedModel],
    base_files: dict[str, bytes],
    head_files: dict[str, bytes],
    changes: list[FileChange],
) -> list[ModelChange]:
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
        rules_path = directory + "rules.yaml"
        if rules_path in files:
            old_alerts, new_alerts = (
                _names(base_files, rules_path, "alert"),
                _names(head_files, rules_path, "alert"),
            )
            details += [f"alert added: {a}" for a in sorted(new_alerts - old_alerts)]
            details += [f"alert removed: {a}" for a in sorted(old_alerts - new_alerts)]
        if details or files:
            if not details:
                details.append("generated files changed (compiler or project defaults)")
            result.append(ModelChange(name, env, "changed", details, files, directory))
    return result


_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{")


def _used_series(tree: dict[str, bytes], env_prefix: str) -> set[str]:
    used: set[str] = set()
    for path, content in tree.items():
        if not path.startswith(env_prefix):
            continue
        if path.endswith("rules.yaml"):
            for group in (yaml.load(content, Loader=_Loader) or {}).get("groups", []):
                for rule in group.get("rules", []):
                    used |= set(_SELECTOR.findall(rule.get("expr", "")))
        elif path.endswith("dashboard.json"):
            for panel in json.loads(content).get("panels", []):
                for target in panel.get("targets", []):
                    used |= set(_SELECTOR.findall(target.get("expr", "")))
    return used


def _service(tree: dict[str, bytes], path: str) -> dict[str, Any] | None:
    content = tree.get(path)
    if content is None:
        return None
    spec: dict[str, Any] = yaml.safe_load(content).get("spec", {})
    return spec


def breaking_changes(
    summary: list[ModelChange], base_files: dict[str, bytes], head_files: dict[str, bytes]
) -> list[Breaking]:
    """Changes that break someone downstream, even when every file is valid."""
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
            _names(base_files, rules, "alert") - _names(head_files, rules, "alert")
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
            _names(base_files, rules, "record") - _names(head_files, rules, "record")
            if rules in change.files
            else set()
        )
        if gone and env not in used_in:
            used_in[env] = _used_series(head_files, f"{env}/")
        for record in sorted(gone & used_in.get(env, set())):
            found.append(
                Breaking(
                    model, env, f"recording rule {record} removed while a dashboard or alert still uses it"
                )
            )
        old_board, new_board = (
            base_files.get(directory + "dashboard.json"),
            head_files.get(directory + "dashboard.json"),
        )
        if old_board and new_board and json.loads(old_board)["uid"] != json.loads(new_board)["uid"]:
            found.append(Breaking(model, env, "dashboard uid changed: links and bookmarks break"))
        old_service, new_service = (
            _service(base_files, directory + "service.yaml"),
            _service(head_files, directory + "service.yaml"),
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
