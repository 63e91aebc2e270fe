"""Skip parsing and resolving specs that did not change since the last compile.

Validating every spec costs about 2 ms each, which is most of an incremental compile of a
large project. The cache keeps, per spec file, the digest of its text, the warnings its check
gave for each environment (wherever they point: a value inherited from the project's defaults
is warned about in the project file) and the hash of each model it resolves to. It is valid
only for the same project file, evaluation records, working directory (diagnostics name files
relative to it) and compiler code; any error, any duplicate, anything unusual sends the caller
back to the full check, which then reports exactly what a cold run would.

It lives in .modelops-cache/ beside the specs directory and ignores itself in Git.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from compiler import __version__
from compiler.compile import CompileInput, ModelEntry, entries_of
from compiler.diagnostics import Diagnostic, DiagnosticError, Severity, combined, problems_in, unique_sorted
from compiler.pipeline import Checked
from compiler.resolve.resolver import build_models, merge_catalog, undeclared_environments
from compiler.spec.catalog import (
    Catalog,
    LoadedSpec,
    check_overlay_names,
    display_path,
    parse_project,
    parse_spec,
    root_relative,
    scan_spec_files,
)
from compiler.spec.check_merged import check_merged
from compiler.spec.project import Project
from compiler.spec.records import load_records, read_record, record_files
from compiler.spec.yamlsource import load_bytes, load_file, read_source

CACHE_DIR = ".modelops-cache"
CACHE_FILE = "check.json"
FORMAT = 2  # 2: warnings by environment, in any file


@dataclass
class CachedSpec:
    digest: str
    warnings: dict[str, list[Diagnostic]]  # environment -> what checking the spec for it warned about
    models: list[ModelEntry]  # loaded from the cache: known by their hashes only, enough to keep a directory

    def warnings_for(self, environments: list[str] | None) -> list[Diagnostic]:
        """The warnings a check of these environments (all when None) gives for this spec."""
        return [
            warning
            for environment, warnings in self.warnings.items()
            if environments is None or environment in environments
            for warning in warnings
        ]


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _code_fingerprint() -> str:
    """Changes whenever the compiler's own code does (a development checkout, an upgrade), or
    the libraries that parse and validate specs."""
    import pydantic
    import yaml

    hashed = hashlib.sha256(f"{__version__} {pydantic.VERSION} {yaml.__version__}".encode())
    package = Path(__file__).parent
    for path in sorted(package.rglob("*.py")):
        hashed.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return hashed.hexdigest()


def context_key(project_file: Path, root: Path) -> str:
    """Everything besides a spec's own text that its check depends on. A file that cannot be
    read counts as such (the check skips an unreadable evaluation record, and refuses an
    unreadable project file with its own message)."""
    hashed = hashlib.sha256()
    for part in (str(FORMAT), _code_fingerprint(), str(project_file.resolve()), str(Path.cwd())):
        hashed.update(part.encode() + b"\0")
    try:
        hashed.update(b"\1" + read_source(project_file, str(project_file)) + b"\0")
    except (OSError, DiagnosticError):  # not a file, too large, no permission: the check says so
        hashed.update(b"\0unreadable\0")
    for record in record_files(root):
        content = read_record(root, record)
        hashed.update(record.as_posix().encode() + b"\0" + (b"\0unreadable" if content is None else content))
    return hashed.hexdigest()


def _cache_path(root: Path) -> Path:
    return root / CACHE_DIR / CACHE_FILE


def load(root: Path, context: str) -> dict[str, CachedSpec]:
    try:
        data = json.loads(_cache_path(root).read_bytes())
        if data.get("format") != FORMAT or data.get("context") != context:
            return {}
        return {
            source: CachedSpec(
                entry["digest"],
                {env: [_diagnostic(*one) for one in warnings] for env, warnings in entry["warnings"].items()},
                [ModelEntry(env, ns, name, hashed) for env, ns, name, hashed in entry["models"]],
            )
            for source, entry in data["specs"].items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # absent or damaged: the full check rebuilds it


def _diagnostic(file: str, line: int, column: int, message: str, severity: str, code: str) -> Diagnostic:
    return Diagnostic(file, line, column, message, Severity(severity), code)


def save(root: Path, context: str, specs: dict[str, CachedSpec]) -> None:
    """Best effort: a read-only checkout compiles as well, only without the speed-up."""
    payload = {
        "format": FORMAT,
        "context": context,
        "specs": {
            source: {
                "digest": cached.digest,
                "warnings": {
                    environment: [[d.file, d.line, d.column, d.message, str(d.severity), d.code] for d in ws]
                    for environment, ws in sorted(cached.warnings.items())
                },
                "models": [[m.environment, m.namespace, m.name, m.model_hash] for m in cached.models],
            }
            for source, cached in sorted(specs.items())
        },
    }
    path = _cache_path(root)
    try:
        path.parent.mkdir(exist_ok=True)
        ignore = path.parent / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# written by modelops: a local cache, never committed\n*\n")
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_bytes(json.dumps(payload, separators=(",", ":")).encode())
        temporary.replace(path)
    except OSError:
        pass


def record(checked: Checked, entries: list[ModelEntry]) -> dict[str, CachedSpec]:
    """Cache entries from a check of every environment that passed; `entries` are its models
    (entries_of(checked.models), hashed once by the caller)."""
    catalog = checked.catalog
    assert catalog is not None and checked.ok
    warnings: dict[str, dict[str, list[Diagnostic]]] = {}
    for (source, environment), found in checked.found.items():
        if found:
            warnings.setdefault(source, {})[environment] = unique_sorted(found)
    by_source: dict[str, list[ModelEntry]] = {}
    for entry in entries:
        assert entry.resolved is not None, "entries of the check just made"
        by_source.setdefault(entry.resolved.source, []).append(entry)
    return {
        loaded.source: CachedSpec(
            text_digest(loaded.document.text),
            warnings.get(loaded.source, {}),
            by_source.get(loaded.source, []),
        )
        for loaded in catalog.specs
    }


def quick_check(
    paths: list[Path], project_file: Path, environments: list[str] | None, context: str
) -> tuple[CompileInput, dict[str, CachedSpec] | None] | None:
    """Check only the specs whose text changed; None when the full check must run instead.
    With the result come the cache's new entries, or None when they are what it holds."""
    project_path = project_file.resolve()
    root = project_path.parent.parent
    cached = load(root, context)
    if not cached:
        return None
    try:
        project_document = load_file(project_file, display_path(project_file))
    except (OSError, DiagnosticError):
        return None
    project, problems = parse_project(project_document)
    if project is None or problems:
        return None
    if undeclared_environments(project, environments):
        return None  # the full check names the unknown environment
    read = _read_specs(paths, project_path, root, cached, project)
    if read is None:
        return None
    hits, changed, spec_files = read
    catalog = Catalog(root, project_path, project, project_document, changed, spec_files)
    if changed:
        catalog.evaluations = load_records(root)
    passed, found = check_merged(project, merge_catalog(catalog))
    resolution = build_models(catalog, passed)
    problems = problems_in(found) + resolution.diagnostics
    if any(d.is_error for d in problems):
        return None
    changed_entries = entries_of(resolution.models)  # ready to render
    checked = Checked(catalog, resolution.models, problems, combined(found, resolution.found))
    fresh = record(checked, changed_entries)
    entries = [entry for cached_spec in hits.values() for entry in cached_spec.models] + changed_entries
    if len({entry.key for entry in entries}) != len(entries):
        return None  # a duplicate model: the full check says where
    chosen = sorted(
        (e for e in entries if environments is None or e.environment in environments), key=lambda e: e.key
    )
    specs = {**hits, **fresh}
    diagnostics = unique_sorted([d for spec in specs.values() for d in spec.warnings_for(environments)])
    inputs = CompileInput(project, project_path, root, chosen, diagnostics, len(changed), len(hits))
    unchanged = not fresh and specs.keys() == cached.keys()
    return inputs, None if unchanged else specs


def _read_specs(
    paths: list[Path], project_path: Path, root: Path, cached: dict[str, CachedSpec], project: Project
) -> tuple[dict[str, CachedSpec], list[LoadedSpec], int] | None:
    """Cache hits (same text) and the changed specs, parsed; None at the first problem."""
    hits: dict[str, CachedSpec] = {}
    changed: list[LoadedSpec] = []
    scan = scan_spec_files(paths or [project_path.parent], root)
    if scan.problems:
        return None  # a refused link or a skipped special file: the full check reports it
    files = scan.files
    for path, resolved in files:
        if resolved == project_path:
            continue
        source = root_relative(resolved, root)
        hit = cached.get(source)
        try:
            raw = read_source(path, display_path(path))
            if hit is not None and hit.digest == text_digest(raw.decode("utf-8-sig")):
                hits[source] = hit
                continue
            document = load_bytes(raw, display_path(path))
        except (OSError, UnicodeDecodeError, DiagnosticError):
            return None
        spec, problems = parse_spec(document)
        if spec is None or problems or check_overlay_names(spec, document, project):
            return None
        changed.append(LoadedSpec(document, spec, source))
    return hits, changed, len(files)
