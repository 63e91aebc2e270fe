"""`modelops history MODEL`: each version a model had, from the Git log of its spec.

Candidates count too: when one was added (and under which rollout strategy), promoted (it
became `model`) or removed. The strategy and candidate of each environment come from the spec,
its overlays and the project's `defaults.rollout` as they were at each commit.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import git

from compiler.diagnostics import DiagnosticError
from compiler.errors import UsageError
from compiler.gitops.repo import blob_at, open_repo
from compiler.resolve.merge import Layer, merge_layers
from compiler.spec.catalog import find_project_file, find_spec_files
from compiler.spec.model import Gate
from compiler.spec.records import EVALUATIONS_DIR, MAX_RECORD_BYTES
from compiler.spec.yamlsource import PositionMap, load_bytes, read_source


@dataclass(frozen=True)
class Version:
    version: str
    commit: str
    date: str
    author: str
    summary: str
    gates: dict[str, str]
    role: str = "model"  # model | candidate
    event: str = "version"  # model: version | promoted; candidate: added | changed | removed
    strategy: str = "rolling"  # per environment when they differ: "canary in production, ..."


@dataclass(frozen=True)
class _State:
    """What one commit's spec says of delivery: its strategy, and each candidate with its own."""

    strategy: str
    candidates: dict[str, str]  # candidate version -> strategy words


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _data(raw: bytes | None) -> Any:
    """A committed file's YAML (JSON included), read with the spec loader's limits (size,
    aliases, depth): any commit of the history came from a pull request. None when it does
    not parse."""
    try:
        return load_bytes(raw or b"", "history").data
    except DiagnosticError:
        return None


def _strategies(spec: dict[str, Any], project: bytes | None) -> dict[str, tuple[str | None, str]]:
    """Per environment: the candidate version (or None) and the rollout strategy, merged as
    compile merges them (project defaults, spec, overlay); raw YAML, so any commit reads."""
    body = _mapping(spec.get("spec"))
    project_data = _mapping(_data(project))
    overlays = _mapping(body.get("environments"))
    declared = project_data.get("environments")
    names = [str(_mapping(env).get("name")) for env in (declared if isinstance(declared, list) else [])]
    defaults = {"rollout": _mapping(project_data.get("defaults")).get("rollout")}
    layers = [defaults, {k: v for k, v in body.items() if k != "environments"}]
    found = {}
    for name in names or list(overlays) or [""]:
        stack = [*layers, _mapping(overlays.get(name))]
        merged = _mapping(merge_layers([Layer(data, PositionMap(), ()) for data in stack], ())[0])
        version = _mapping(merged.get("candidate")).get("version")
        strategy = _mapping(merged.get("rollout")).get("strategy") or "rolling"
        found[name] = (None if version is None else str(version), str(strategy))
    return found


def _words(strategies: dict[str, str], environments: int) -> str:
    """`canary`, or `canary in production, rolling in staging` when environments differ (or
    only some have what is described)."""
    kinds = list(dict.fromkeys(strategies.values()))
    if len(kinds) == 1 and len(strategies) == environments:
        return kinds[0]
    return ", ".join(
        f"{kind} in {' and '.join(e for e, k in strategies.items() if k == kind)}" for kind in kinds
    )


def _state(spec: dict[str, Any], project: bytes | None) -> _State:
    per_env = _strategies(spec, project)
    candidates: dict[str, dict[str, str]] = {}
    for env, (candidate, strategy) in per_env.items():
        if candidate is not None:
            candidates.setdefault(candidate, {})[env] = strategy
    strategy = _words({env: s for env, (_, s) in per_env.items()}, len(per_env)) or "rolling"
    return _State(strategy, {c: _words(envs, len(per_env)) for c, envs in candidates.items()})


def _name_and_version(spec: dict[str, Any]) -> tuple[str | None, str | None]:
    name = _mapping(spec.get("metadata")).get("name")
    version = _mapping(_mapping(spec.get("spec")).get("model")).get("version")
    if name is None or version is None:
        return None, None  # a commit where the spec did not parse: not a version
    return str(name), str(version)


def _spec_file(model: str, specs: Path) -> Path:
    for path in find_spec_files([specs], specs.parent):
        try:
            raw = read_source(path, str(path))
        except (OSError, DiagnosticError):
            continue  # not a readable spec: validate says why
        if _name_and_version(_mapping(_data(raw)))[0] == model:
            return path
    raise UsageError(f"no spec in {specs} defines model {model!r}")


def _gates(commit_blob: bytes | None, spec: dict[str, Any]) -> dict[str, str]:
    """Measured values from the evaluation record committed with that version, against its gates."""
    if commit_blob is None:
        return {}
    try:
        record = json.loads(commit_blob) if len(commit_blob) <= MAX_RECORD_BYTES else None
    except ValueError:
        record = None
    metrics = _mapping(_mapping(record).get("metrics"))
    gates = _mapping(_mapping(_mapping(spec.get("spec")).get("evaluation")).get("gates"))
    found = {}
    for name, bound in gates.items():
        value = metrics.get(name)
        try:
            gate = Gate.model_validate(bound)
        except ValueError:
            continue  # a gate that was invalid at that commit says nothing
        if value is None:
            found[str(name)] = "not measured"
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            found[str(name)] = f"{value:.4g} {'pass' if gate.passes(value) else 'FAIL'}"
    return found


def _paths_over_time(repo: git.Repo, relative: str) -> list[str]:
    """Every path the spec file has had, newest first: `git log --follow` sees renames."""
    log = repo.git.log("--follow", "--name-only", "--format=", "--", relative)
    paths = list(dict.fromkeys(line for line in log.splitlines() if line))
    return paths or [relative]


def _spec_at(commit: git.Commit, paths: list[str], model: str) -> tuple[dict[str, Any], str] | None:
    """The spec's data (parsed once) and version at a commit, under whichever of its names it
    had then."""
    for path in paths:
        raw = blob_at(commit, path)
        if raw is None:
            continue
        spec = _mapping(_data(raw))
        name, version = _name_and_version(spec)
        if name == model and version is not None:
            return spec, version
    return None


def _row(
    commit: git.Commit, gates: dict[str, str], version: str, role: str, event: str, strategy: str
) -> Version:
    return Version(
        version=version,
        commit=commit.hexsha[:12],
        date=datetime.fromtimestamp(commit.committed_date, tz=UTC).strftime("%Y-%m-%d %H:%M UTC"),
        author=str(commit.author.name),
        summary=str(commit.summary),
        gates=gates,
        role=role,
        event=event,
        strategy=strategy,
    )


def history(model: str, paths: list[Path], project: Path | None) -> list[Version]:
    project_file = find_project_file(paths, project).resolve()
    project_dir = project_file.parent
    spec_path = _spec_file(model, project_dir)
    repo = open_repo(project_dir)
    worktree = Path(repo.working_tree_dir or ".").resolve()
    relative = spec_path.resolve().relative_to(worktree).as_posix()
    project_path = project_file.relative_to(worktree).as_posix()
    spec_paths = _paths_over_time(repo, relative)
    if not project_dir.parent.is_relative_to(worktree):
        raise UsageError(
            f"the project ({project_dir.parent}, which holds evaluations/) is not inside the Git "
            f"repository at {worktree}: history reads specs and evaluation records from one repository"
        )
    root = project_dir.parent.relative_to(worktree)
    records = (root / EVALUATIONS_DIR / model).as_posix()
    versions: list[Version] = []
    current: dict[tuple[str, str], int] = {}  # (role, version) -> its row, while the spec has it
    last: _State | None = None
    # Commits touching the spec (under any of its names), its evaluation records (often
    # committed later than the version they measure) or the project file (rollout defaults).
    for commit in reversed(
        list(repo.iter_commits(paths=[*spec_paths, records, project_path], max_count=1000))
    ):
        found = _spec_at(commit, spec_paths, model)
        if found is None:
            continue
        data, version = found
        state = _state(data, blob_at(commit, project_path))
        lasting = {("model", version): state.strategy}
        lasting |= {("candidate", candidate): words for candidate, words in state.candidates.items()}
        for candidate, words in (last.candidates if last else {}).items():
            if candidate not in state.candidates and candidate != version:  # went, not promoted
                versions.append(_row(commit, {}, candidate, "candidate", "removed", words))
        for (role, what), strategy in lasting.items():
            gates = _gates(blob_at(commit, f"{records}/{what}.json"), data)
            index = current.get((role, what))
            if index is None or (role == "candidate" and versions[index].strategy != strategy):
                if role == "model":
                    event = "promoted" if last is not None and what in last.candidates else "version"
                else:
                    event = "added" if index is None else "changed"
                current[(role, what)] = len(versions)
                versions.append(_row(commit, gates, what, role, event, strategy))
            elif gates:  # a record committed after the version it measures
                versions[index] = replace(versions[index], gates=gates)
        current = {key: index for key, index in current.items() if key in lasting}
        last = state
    return versions


def _rollout(v: Version) -> str:
    if v.role == "model":
        return "promoted" if v.event == "promoted" else v.strategy
    if v.event == "removed":
        return "candidate removed"
    return f"candidate, {'now ' if v.event == 'changed' else ''}{v.strategy}"


def render(versions: list[Version], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([asdict(v) for v in versions], indent=2) + "\n"
    # the ROLLOUT column only for a model that ever had a candidate or another strategy
    rollouts = any(v.role != "model" or v.strategy != "rolling" for v in versions)
    rows = [("VERSION", *(["ROLLOUT"] if rollouts else []), "DATE", "COMMIT", "AUTHOR", "GATES", "SUMMARY")]
    for v in reversed(versions):  # newest first, like git log
        gates = ", ".join(f"{k} {g}" for k, g in v.gates.items()) or "-"
        rows.append(
            (v.version, *([_rollout(v)] if rollouts else []), v.date, v.commit, v.author, gates, v.summary)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return (
        "\n".join(
            "  ".join([*(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)), r[-1]]).rstrip()
            for r in rows
        )
        + "\n"
    )
