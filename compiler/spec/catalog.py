"""Find and load the project file and the spec files named on the command line."""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from compiler.diagnostics import Diagnostic, DiagnosticError, Severity
from compiler.errors import UsageError
from compiler.spec.errors import diagnostics_from, dotted, suggest
from compiler.spec.model import API_VERSION, ModelSpec
from compiler.spec.project import PROJECT_FILE, Project
from compiler.spec.records import EvaluationRecord, load_records
from compiler.spec.yamlsource import SourceDocument, load_file

SPEC_SUFFIXES = (".yaml", ".yml")
RESERVED_ENVIRONMENT_NAMES = frozenset({"argocd", "flux"})


@dataclass
class LoadedSpec:
    document: SourceDocument
    spec: ModelSpec
    source: str  # relative to the project root, forward slashes


@dataclass
class Catalog:
    """Everything read from disk: the project, and every spec that passed type validation."""

    root: Path
    project_file: Path
    project: Project
    project_document: SourceDocument
    specs: list[LoadedSpec] = field(default_factory=list)
    spec_files: int = 0
    evaluations: dict[tuple[str, str], EvaluationRecord] = field(default_factory=dict)


def display_path(path: Path) -> str:
    """A path as users and GitHub annotations want it: relative to the working directory."""
    return display_resolved(path.resolve())


def display_resolved(absolute: Path) -> str:
    """display_path of a path already resolved (a spec file as the scan found it): resolving
    costs a system call per component, for each of thousands of specs."""
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return os.path.relpath(absolute) if absolute.anchor == Path.cwd().anchor else str(absolute)


def _link_display(path: Path) -> str:
    """display_path of a path without following it when it is itself a link: a message about
    a link names the link, not where it points."""
    return (Path(display_path(path.parent)) / path.name).as_posix()


def _inside(resolved: Path, root: Path) -> bool:
    return resolved == root or resolved.is_relative_to(root)


@dataclass
class SpecFiles:
    """The spec files below some paths, and the entries refused or skipped on the way."""

    files: list[tuple[Path, Path]]  # each as named and resolved, sorted by resolved path
    problems: list[Diagnostic]  # links that loop, dangle or leave the project; special files


def find_spec_files(paths: list[Path], root: Path) -> list[Path]:
    """Spec files below the given paths: directories are searched recursively, hidden ones skipped."""
    return [path for path, _ in scan_spec_files(paths, root).files]


def scan_spec_files(paths: list[Path], root: Path) -> SpecFiles:
    """Spec files below `paths`, each with its resolved form, that are safe to open.

    The rules: a file read as a spec is a regular file inside the project `root` (the
    directory above the one holding modelops.yaml). A symbolic link is followed only when
    its target is inside the project; a link that loops, dangles or leads outside is an
    error naming the link, and its target is never opened. FIFOs, sockets and devices
    named like specs are skipped with a warning, never opened. Directory links are not
    followed (os.walk's default). A directory is resolved once and its plain files joined
    to it: resolving every file costs a syscall per path component.
    """
    root = root.resolve()
    found: list[tuple[Path, Path]] = []
    problems: list[Diagnostic] = []
    for path in paths:
        if path.is_dir():
            resolved_directory = path.resolve()
            if not _inside(resolved_directory, root):
                raise UsageError(
                    f"{path}: outside the project ({root}); modelops reads specs only inside the project"
                )
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                directory = Path(dirpath)
                resolved_directory = directory.resolve()
                for name in sorted(filenames):
                    if name.endswith(SPEC_SUFFIXES) and not name.startswith(".") and name != PROJECT_FILE:
                        _classify(directory / name, resolved_directory / name, root, found, problems)
        elif os.path.lexists(path):
            _classify(path, path.parent.resolve() / path.name, root, found, problems)
        else:
            raise UsageError(f"{path}: no such file or directory")
    unique: dict[Path, Path] = {}
    for path, resolved in found:
        unique.setdefault(resolved, path)
    pairs = [(path, resolved) for resolved, path in unique.items()]
    return SpecFiles(sorted(pairs, key=lambda pair: pair[1].as_posix()), problems)


def _classify(
    path: Path, joined: Path, root: Path, found: list[tuple[Path, Path]], problems: list[Diagnostic]
) -> None:
    """Add `path` to `found` if it is safe to read as a spec, else say why to `problems`.
    `joined` is its resolved directory joined to its name: its resolved form unless a link."""

    def problem(message: str, severity: Severity = Severity.ERROR) -> None:
        problems.append(Diagnostic(_link_display(path), 1, 1, message, severity, "spec-file"))

    try:
        info = path.lstat()
        resolved = joined
        if stat.S_ISLNK(info.st_mode):
            resolved = Path(os.path.realpath(path, strict=True))
            if not _inside(resolved, root):
                problem(
                    f"symbolic link to a file outside the project ({root}); modelops reads only "
                    "files inside the project, so copy the spec in or remove the link"
                )
                return
            info = resolved.stat()
    except OSError as err:
        if err.errno == errno.ELOOP:
            problem("symbolic link loop (the link leads back to itself); remove it or point it at a spec")
        elif err.errno in (errno.ENOENT, errno.ENOTDIR):
            problem("symbolic link to a file that does not exist; remove it or point it at a spec")
        else:
            raise UsageError(f"{_link_display(path)}: cannot read: {err.strerror or err}") from err
        return
    if not _inside(resolved, root):
        raise UsageError(
            f"{_link_display(path)}: outside the project ({root}); modelops reads specs only "
            "inside the project"
        )
    if not stat.S_ISREG(info.st_mode):
        problem(
            f"skipped: not a regular file ({_file_kind(info.st_mode)}); a spec is a plain YAML file",
            Severity.WARNING,
        )
        return
    found.append((path, resolved))


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a directory" if stat.S_ISDIR(mode) else "a special file"


def find_project_file(paths: list[Path], explicit: Path | None) -> Path:
    """The project file: --project if given, else the nearest modelops.yaml above the first path.

    A project file that is a link must stay inside the project its location names: its
    errors would otherwise print the lines of whatever file it points at."""
    if explicit is not None:
        if not explicit.is_file():
            raise UsageError(f"{explicit}: project file not found")
        return _checked_project_file(explicit)
    start = paths[0] if paths else Path.cwd()
    directory = start.resolve() if start.is_dir() else start.parent.resolve()  # a file: not followed
    for candidate_dir in (directory, *directory.parents):
        for candidate in (candidate_dir / PROJECT_FILE, candidate_dir / "specs" / PROJECT_FILE):
            if candidate.is_file():
                return _checked_project_file(candidate)
    raise UsageError(f"no {PROJECT_FILE} found in {directory} or above; create one or pass --project FILE")


def _checked_project_file(path: Path) -> Path:
    if path.is_symlink() and not _inside(path.resolve(), path.parent.resolve().parent):
        raise UsageError(
            f"{_link_display(path)}: the project file is a symbolic link to a file outside the "
            "project; modelops reads only files inside the project"
        )
    return path


def _read(path: Path, resolved: Path | None = None) -> SourceDocument:
    """The file at `path` (`resolved`: its resolved form, when known), parsed."""
    display = display_resolved(resolved) if resolved is not None else display_path(path)
    try:
        return load_file(path, display)
    except OSError as err:
        raise UsageError(f"{display}: cannot read: {err.strerror or err}") from err


def _check_header(document: SourceDocument, kind: str) -> list[Diagnostic]:
    """Check apiVersion and kind first: if they are wrong, field errors are only noise."""
    data = document.data
    if not isinstance(data, dict):
        return [
            Diagnostic.at(
                document.at(()),
                f"expected a mapping with apiVersion, kind, metadata and spec; the file holds "
                f"{type(data).__name__ if data is not None else 'nothing'}",
            )
        ]
    found: list[Diagnostic] = []
    for field_name, expected in (("apiVersion", API_VERSION), ("kind", kind)):
        if field_name not in data:
            continue  # reported as a missing field by the model
        value = data[field_name]
        if value != expected:
            hint = (
                f"; did you mean {expected!r}?"
                if isinstance(value, str) and suggest(value, [expected])
                else ""
            )
            found.append(
                Diagnostic.at(
                    document.at((field_name,)),
                    f"{field_name}: expected {expected!r}, got {value!r}{hint}",
                    code="header",
                )
            )
    return found


_Body = TypeVar("_Body", bound=BaseModel)


def _parse(document: SourceDocument, kind: str, model: type[_Body]) -> tuple[_Body | None, list[Diagnostic]]:
    """The header checked, then the body validated: errors point at the file's lines."""
    header = _check_header(document, kind)
    if header:
        return None, header
    try:
        return model.model_validate(document.data), []
    except ValidationError as err:
        return None, diagnostics_from(err, model, document.positions, document.file)


def parse_project(document: SourceDocument) -> tuple[Project | None, list[Diagnostic]]:
    project, problems = _parse(document, "Project", Project)
    if project is None:
        return None, problems
    return project, _check_project(project, document)


def _check_project(project: Project, document: SourceDocument) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    seen: dict[str, int] = {}
    places: dict[tuple[str | None, str], int] = {}  # (kube context, namespace) -> first environment
    for index, env in enumerate(project.environments):
        first = places.setdefault((env.context, env.namespace), index)
        if first != index:
            cluster = f"context {env.context!r}" if env.context else "the current kube context"
            found.append(
                Diagnostic.at(
                    document.at(("environments", index, "namespace")),
                    f"environment {env.name!r} uses namespace {env.namespace!r} in {cluster}, as "
                    f"environment {project.environments[first].name!r} does: each would apply objects "
                    "of the same names there over the other's; give one of them another namespace or "
                    "context",
                )
            )
        if env.name in RESERVED_ENVIRONMENT_NAMES:
            found.append(
                Diagnostic.at(
                    document.at(("environments", index, "name")),
                    f"environment name {env.name!r} is reserved: generated/{env.name}/ holds the sync-tool "
                    "entry points; choose another name",
                )
            )
        if env.name in seen:
            found.append(
                Diagnostic.at(
                    document.at(("environments", index, "name")),
                    f"environment {env.name!r} is declared twice (first as environments[{seen[env.name]}])",
                )
            )
        seen.setdefault(env.name, index)
    for p_index, policy in enumerate(project.policies):
        for e_index, env_name in enumerate(policy.environments or []):
            if env_name not in seen:
                guess = suggest(env_name, list(seen))
                hint = f"; did you mean {guess!r}?" if guess else f" (declared: {', '.join(seen)})"
                found.append(
                    Diagnostic.at(
                        document.at(("policies", p_index, "environments", e_index)),
                        f"policy {policy.name!r} names environment {env_name!r}, which the project "
                        f"does not declare{hint}",
                    )
                )
    return found


def parse_spec(document: SourceDocument) -> tuple[ModelSpec | None, list[Diagnostic]]:
    return _parse(document, "Model", ModelSpec)


def check_overlay_names(spec: ModelSpec, document: SourceDocument, project: Project) -> list[Diagnostic]:
    declared = [env.name for env in project.environments]
    found: list[Diagnostic] = []
    for name in spec.spec.environments:
        if name not in declared:
            guess = suggest(name, declared)
            hint = f"; did you mean {guess!r}?" if guess else f"; declared: {', '.join(declared)}"
            found.append(
                Diagnostic.at(
                    document.key_at(("spec", "environments", name)),
                    f"{dotted(('spec', 'environments'))}: environment {name!r} is not declared in "
                    f"{PROJECT_FILE}{hint}",
                    code="environment",
                )
            )
    return found


def load_catalog(
    paths: list[Path], project_path: Path | None = None
) -> tuple[Catalog | None, list[Diagnostic]]:
    """Load the project and all specs, collecting every diagnostic rather than stopping early.

    Raises UsageError for input that cannot be read at all (missing paths, I/O errors).
    """
    project_file = find_project_file(paths, project_path)
    project_resolved = project_file.resolve()
    root = project_resolved.parent.parent
    scan = scan_spec_files(paths or [project_file.parent], root)
    diagnostics: list[Diagnostic] = list(scan.problems)
    try:
        project_doc = _read(project_file)
    except DiagnosticError as err:
        return None, diagnostics + err.diagnostics
    project, problems = parse_project(project_doc)
    diagnostics.extend(problems)
    loaded: list[LoadedSpec] = []
    for path, resolved in scan.files:
        if resolved == project_resolved:
            continue
        try:
            document = _read(path, resolved)
        except DiagnosticError as err:
            diagnostics.extend(err.diagnostics)
            continue
        spec, problems = parse_spec(document)
        diagnostics.extend(problems)
        if spec is None:
            continue
        if project is not None:
            diagnostics.extend(check_overlay_names(spec, document, project))
        loaded.append(LoadedSpec(document, spec, root_relative(resolved, root)))
    if project is None:
        return None, diagnostics
    catalog = Catalog(root, project_resolved, project, project_doc, loaded, len(scan.files))
    catalog.evaluations = load_records(root)
    return catalog, diagnostics


def root_relative(resolved: Path, root: Path) -> str:
    """A resolved spec path as the `source` annotation shows it: relative to the project root."""
    try:
        return resolved.relative_to(root).as_posix()
    except ValueError:
        return resolved.as_posix()
