"""`modelops history MODEL`: each version a model had, from the Git log of its spec."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import git
import yaml

from compiler.errors import UsageError
from compiler.gitops.repo import blob_at, open_repo
from compiler.spec.catalog import find_project_file, find_spec_files
from compiler.spec.model import Gate
from compiler.spec.records import EVALUATIONS_DIR


@dataclass(frozen=True)
class Version:
    version: str
    commit: str
    date: str
    author: str
    summary: str
    gates: dict[str, str]


def _name_and_version(data: bytes) -> tuple[str | None, str | None]:
    try:
        spec = yaml.safe_load(data)
        return str(spec["metadata"]["name"]), str(spec["spec"]["model"]["version"])
    except (yaml.YAMLError, KeyError, TypeError):
        return None, None  # a commit where the spec did not parse: not a version


def _spec_file(model: str, specs: Path) -> Path:
    for path in find_spec_files([specs], specs.parent):
        if _name_and_version(path.read_bytes())[0] == model:
            return path
    raise UsageError(f"no spec in {specs} defines model {model!r}")


def _gates(commit_blob: bytes | None, spec: bytes) -> dict[str, str]:
    """Measured values from the evaluation record committed with that version, against its gates."""
    if commit_blob is None:
        return {}
    try:
        metrics = json.loads(commit_blob)["metrics"]
        gates = (yaml.safe_load(spec)["spec"].get("evaluation") or {}).get("gates") or {}
    except (ValueError, KeyError, TypeError, yaml.YAMLError):
        return {}
    found = {}
    for name, bound in gates.items():
        value = metrics.get(name)
        try:
            gate = Gate.model_validate(bound)
        except ValueError:
            continue  # a gate that was invalid at that commit says nothing
        found[name] = (
            "not measured" if value is None else f"{value:.4g} {'pass' if gate.passes(value) else 'FAIL'}"
        )
    return found


def _paths_over_time(repo: git.Repo, relative: str) -> list[str]:
    """Every path the spec file has had, newest first: `git log --follow` sees renames."""
    log = repo.git.log("--follow", "--name-only", "--format=", "--", relative)
    paths = list(dict.fromkeys(line for line in log.splitlines() if line))
    return paths or [relative]


def _spec_at(commit: git.Commit, paths: list[str], model: str) -> tuple[bytes, str] | None:
    """The spec's text and version at a commit, under whichever of its names it had then."""
    for path in paths:
        data = blob_at(commit, path)
        if data is None:
            continue
        name, version = _name_and_version(data)
        if name == model and version is not None:
            return data, version
    return None


def history(model: str, paths: list[Path], project: Path | None) -> list[Version]:
    project_dir = find_project_file(paths, project).resolve().parent
    spec_path = _spec_file(model, project_dir)
    repo = open_repo(project_dir)
    worktree = Path(repo.working_tree_dir or ".").resolve()
    relative = spec_path.resolve().relative_to(worktree).as_posix()
    spec_paths = _paths_over_time(repo, relative)
    root = project_dir.parent.relative_to(worktree)
    records = (root / EVALUATIONS_DIR / model).as_posix()
    versions: list[Version] = []
    # Commits touching the spec (under any of its names) or its evaluation records: records
    # are often committed later than the version they measure.
    for commit in reversed(list(repo.iter_commits(paths=[*spec_paths, records], max_count=1000))):
        found = _spec_at(commit, spec_paths, model)
        if found is None:
            continue
        data, version = found
        gates = _gates(blob_at(commit, f"{records}/{version}.json"), data)
        if versions and versions[-1].version == version:
            if gates:
                versions[-1] = replace(versions[-1], gates=gates)
            continue
        versions.append(
            Version(
                version=version,
                commit=commit.hexsha[:12],
                date=datetime.fromtimestamp(commit.committed_date, tz=UTC).strftime("%Y-%m-%d %H:%M UTC"),
                author=str(commit.author.name),
                summary=str(commit.summary),
                gates=gates,
            )
        )
    return versions


def render(versions: list[Version], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([asdict(v) for v in versions], indent=2) + "\n"
    rows = [("VERSION", "DATE", "COMMIT", "AUTHOR", "GATES", "SUMMARY")]
    for v in reversed(versions):  # newest first, like git log
        gates = ", ".join(f"{k} {g}" for k, g in v.gates.items()) or "-"
        rows.append((v.version, v.date, v.commit, v.author, gates, v.summary))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return (
        "\n".join(
            "  ".join([*(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)), r[-1]]).rstrip()
            for r in rows
        )
        + "\n"
    )
