"""The full check of many specs in worker processes: a large project's, for compile, and the
specs a review's sides share, for `diff --base` without a check cache.

Checking a spec (parse, validate, merge and check each environment, resolve) costs a couple
of milliseconds and depends on nothing but the spec and the project: thousands of specs are
checked on every core. Each worker hands back, per spec, its warnings, the digest of its text
(what the check cache keys on) and its models pickled: the workers that render a model
unpickle it, so this process never holds the models at all.

Only clean specs are checked here. An error, a duplicate model, a refused file, anything
unusual, and the caller runs the serial check (`compiler.pipeline.check`), which reports
exactly what it always has: errors cost their one serial check, a clean project none.
"""

from __future__ import annotations

import functools
import pickle
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from compiler.check_cache import CachedSpec, text_digest
from compiler.compile import CompileInput, ModelEntry, model_hash
from compiler.diagnostics import Diagnostic, DiagnosticError, unique_sorted
from compiler.resolve.resolver import build_model, chosen_environments, merge_spec, undeclared_environments
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
from compiler.spec.yamlsource import load_bytes, load_file
from compiler.workers import can_fork, in_workers

WORKER_THRESHOLD = 64  # spec files; below this, starting worker processes costs more
CHUNK = 16  # spec files per task at most


@dataclass(frozen=True)
class SpecInput:
    """One spec file to check: its bytes, or (None) read from `path` by the worker."""

    source: str  # relative to the project root, as the check cache names it
    display: str  # the name its diagnostics give
    path: Path
    raw: bytes | None = None


@dataclass(frozen=True)
class SpecChecked:
    """One spec file that passed, as the worker that checked it hands it back."""

    source: str
    cached: CachedSpec  # its text's digest, its own warnings, its models (pickled)
    warnings: list[Diagnostic]  # every warning its check gave, in any file


# In a worker process: the project it checks specs against, and the chosen environments.
_context: list[tuple[Catalog, list[EnvironmentConfig]]] = []


def _check_spec(spec: SpecInput) -> SpecChecked | None:
    """One spec through the whole check, in a worker; None when it has an error or cannot be
    read (the serial check then says what)."""
    catalog, chosen = _context[0]
    try:
        document = (
            load_file(spec.path, spec.display) if spec.raw is None else load_bytes(spec.raw, spec.display)
        )
    except (OSError, DiagnosticError):
        return None
    parsed, problems = parse_spec(document)
    if parsed is None:
        return None
    problems += check_overlay_names(parsed, document, catalog.project)
    loaded = LoadedSpec(document, parsed, spec.source)
    models: list[ModelEntry] = []
    warnings: dict[str, list[Diagnostic]] = {}
    for environment in chosen:
        checked, found = check_environment(catalog.project, merge_spec(catalog, loaded, environment))
        if checked is None:
            return None
        model, built = build_model(catalog, checked)
        if found or built:
            warnings[environment.name] = unique_sorted(found + built)
        problems += found + built
        models.append(ModelEntry(*model.key, model_hash(model), pickle.dumps(model, pickle.HIGHEST_PROTOCOL)))
    if any(problem.is_error for problem in problems):
        return None
    models.sort(key=lambda entry: entry.key)
    cached = CachedSpec(text_digest(document.text), warnings, models)
    return SpecChecked(spec.source, cached, problems)


def _check_chunk(specs: list[SpecInput]) -> list[SpecChecked | None]:
    return [_check_spec(spec) for spec in specs]


def check_specs(
    catalog: Catalog, environments: list[EnvironmentConfig], specs: list[SpecInput], workers: int
) -> list[SpecChecked] | None:
    """Each spec checked against `catalog`'s project and evaluation records, for each of
    `environments`, in `workers` forked processes, in the order given; None as soon as one
    has an error (or when there are too few specs or workers to be worth it)."""
    if workers < 2 or len(specs) < WORKER_THRESHOLD or not can_fork():
        return None
    size = max(1, min(CHUNK, len(specs) // (workers * 4)))
    chunks = (specs[at : at + size] for at in range(0, len(specs), size))
    results = in_workers(
        _check_chunk, chunks, workers, setup=functools.partial(_context.append, (catalog, environments))
    )
    passed: list[SpecChecked] = []
    try:
        for chunk in results:
            for checked in chunk:
                if checked is None:
                    return None
                passed.append(checked)
    except (BrokenProcessPool, OSError):  # no process could be forked, or one was killed: check here
        return None
    finally:
        results.close()
    return passed


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
    if project is None or problems or undeclared_environments(project, environments):
        return None
    catalog = Catalog(root, project_resolved, project, project_document, [], len(scan.files))
    catalog.evaluations = load_records(root)
    specs = [
        SpecInput(root_relative(resolved, root), display_resolved(resolved), path) for path, resolved in files
    ]
    checked = check_specs(catalog, chosen_environments(project, environments), specs, workers)
    if checked is None:
        return None
    entries = sorted((entry for spec in checked for entry in spec.cached.models), key=lambda e: e.key)
    if len({entry.key for entry in entries}) != len(entries):
        return None  # a duplicate model: the serial check says where
    warnings = unique_sorted([warning for spec in checked for warning in spec.warnings])
    inputs = CompileInput(project, project_resolved, root, entries, warnings, len(scan.files))
    return inputs, {spec.source: spec.cached for spec in checked}
