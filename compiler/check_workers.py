"""The full check of a large project in worker processes, for compile.

Checking a spec (parse, validate, merge and check each environment, resolve) costs a couple
of milliseconds and depends on nothing but the spec and the project: a project of thousands
of specs is checked on every core. Each worker hands back, per spec, its warnings, the digest
of its text (what the check cache keys on) and its models pickled: the workers that render a
model unpickle it, so this process never holds the models at all.

Only a clean project is checked here. An error, a duplicate model, a refused file, anything
unusual, and the caller runs the serial check (`compiler.pipeline.check`), which reports
exactly what it always has: errors cost their one serial check, a clean project none.
"""

from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass
from pathlib import Path

from compiler.check_cache import CachedSpec, text_digest
from compiler.compile import CompileInput, ModelEntry, model_hash
from compiler.diagnostics import Diagnostic, DiagnosticError, unique_sorted
from compiler.resolve.resolver import build_model, merge_spec
from compiler.spec.catalog import (
    Catalog,
    LoadedSpec,
    check_overlay_names,
    display_path,
    display_resolved,
    find_project_file,
    parse_project,
    parse_spec,
    root_relative,
    scan_spec_files,
)
from compiler.spec.check_merged import check_environment
from compiler.spec.project import EnvironmentConfig
from compiler.spec.records import load_records
from compiler.spec.yamlsource import load_file
from compiler.workers import can_fork, in_workers

WORKER_THRESHOLD = 64  # spec files; below this, starting worker processes costs more
CHUNK = 16  # spec files per task at most


@dataclass(frozen=True)
class SpecChecked:
    """One spec file that passed, as the worker that checked it hands it back."""

    source: str  # relative to the project root, as the check cache names it
    cached: CachedSpec  # its text's digest, its own warnings, its models (pickled)
    warnings: list[Diagnostic]  # every warning its check gave, in any file


# In a worker process: the project it checks specs against, and the chosen environments.
_context: list[tuple[Catalog, list[EnvironmentConfig]]] = []


def _check_file(path: Path, resolved: Path) -> SpecChecked | None:
    """One spec through the whole check, in a worker; None when it has an error or cannot be
    read (the serial check then says what)."""
    catalog, chosen = _context[0]
    try:
        document = load_file(path, display_resolved(resolved))
    except (OSError, DiagnosticError):
        return None
    spec, problems = parse_spec(document)
    if spec is None:
        return None
    problems += check_overlay_names(spec, document, catalog.project)
    loaded = LoadedSpec(document, spec, root_relative(resolved, catalog.root))
    models: list[ModelEntry] = []
    for environment in chosen:
        checked, found = check_environment(catalog.project, merge_spec(catalog, loaded, environment))
        problems += found
        if checked is None:
            return None
        model, found = build_model(catalog, checked)
        problems += found
        models.append(ModelEntry(*model.key, model_hash(model), pickle.dumps(model, pickle.HIGHEST_PROTOCOL)))
    if any(problem.is_error for problem in problems):
        return None
    own = unique_sorted([problem for problem in problems if problem.file == document.file])
    models.sort(key=lambda entry: entry.key)
    return SpecChecked(loaded.source, CachedSpec(text_digest(document.text), own, models), problems)


def _check_chunk(files: list[tuple[Path, Path]]) -> list[SpecChecked | None]:
    return [_check_file(path, resolved) for path, resolved in files]


def check_in_workers(
    paths: list[Path], project_path: Path | None, environments: list[str] | None, workers: int
) -> tuple[CompileInput, dict[str, CachedSpec]] | None:
    """A clean project checked in `workers` processes: what compile needs, and the check
    cache's entries for it. None when the serial check must run instead: too few specs or
    workers, or anything but warnings to report."""
    if workers < 2 or not can_fork():
        return None
    project_file = find_project_file(paths, project_path)
    project_resolved = project_file.resolve()
    root = project_resolved.parent.parent
    scan = scan_spec_files(paths or [project_file.parent], root)
    files = [(path, resolved) for path, resolved in scan.files if resolved != project_resolved]
    if scan.problems or len(files) < WORKER_THRESHOLD:
        return None
    try:
        project_document = load_file(project_file, display_path(project_file))
    except (OSError, DiagnosticError):
        return None
    project, problems = parse_project(project_document)
    declared = [environment.name for environment in project.environments] if project else []
    if project is None or problems or any(name not in declared for name in environments or []):
        return None
    chosen = [env for env in project.environments if environments is None or env.name in environments]
    catalog = Catalog(root, project_resolved, project, project_document, [], len(scan.files))
    catalog.evaluations = load_records(root)
    size = max(1, min(CHUNK, len(files) // (workers * 4)))
    chunks = (files[at : at + size] for at in range(0, len(files), size))
    results = in_workers(
        _check_chunk, chunks, workers, setup=functools.partial(_context.append, (catalog, chosen))
    )
    specs: dict[str, CachedSpec] = {}
    warnings: list[Diagnostic] = []
    try:
        for chunk in results:
            for checked in chunk:
                if checked is None:
                    return None
                specs[checked.source] = checked.cached
                warnings += checked.warnings
    finally:
        results.close()
    entries = sorted((entry for cached in specs.values() for entry in cached.models), key=lambda e: e.key)
    if len({entry.key for entry in entries}) != len(entries):
        return None  # a duplicate model: the serial check says where
    inputs = CompileInput(project, project_resolved, root, entries, unique_sorted(warnings), len(scan.files))
    return inputs, specs
