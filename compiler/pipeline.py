"""The front half of the pipeline shared by every command: load, validate, resolve."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.diagnostics import Diagnostic, Found, combined, problems_in, unique_sorted
from compiler.errors import ProjectError
from compiler.resolve.resolved import ResolvedModel
from compiler.resolve.resolver import build_models, merge_catalog, undeclared_environments
from compiler.spec.catalog import Catalog, load_catalog
from compiler.spec.check_merged import check_merged

if TYPE_CHECKING:
    from compiler.gitops.repo import Snapshot


@dataclass
class Checked:
    catalog: Catalog | None
    models: list[ResolvedModel] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    found: Found = field(default_factory=dict)  # each (spec, environment)'s own problems

    @property
    def ok(self) -> bool:
        return self.catalog is not None and not any(d.is_error for d in self.diagnostics)


def check(paths: list[Path], project: Path | None = None, environments: list[str] | None = None) -> Checked:
    """Load every spec and resolve it for every (chosen) environment, collecting all problems."""
    catalog, diagnostics = load_catalog(paths, project)
    if catalog is None:
        return Checked(None, [], unique_sorted(diagnostics))
    if unknown := undeclared_environments(catalog.project, environments):
        declared = [env.name for env in catalog.project.environments]
        raise ProjectError(
            f"unknown environment {', '.join(unknown)}; the project declares {', '.join(declared)}"
        )
    passed, found = check_merged(catalog.project, merge_catalog(catalog, environments))
    resolution = build_models(catalog, passed)
    problems = unique_sorted(diagnostics + problems_in(found) + resolution.diagnostics)
    return Checked(catalog, resolution.models, problems, combined(found, resolution.found))


@contextlib.contextmanager
def check_at_ref(
    paths: list[Path], project: Path | None, environments: list[str] | None, ref: str
) -> Iterator[tuple[Checked, Snapshot]]:
    """`check` on the project as it is at a Git ref; diagnostics name files as REF:path."""
    from compiler.gitops.repo import snapshot
    from compiler.spec.catalog import find_project_file

    project_file = find_project_file(paths, project).resolve()
    project_dir = project_file.parent
    # The paths asked for are exported besides the specs directory: specs may live elsewhere.
    inside = [_moved(path, project_dir, Path()).as_posix() for path in paths]
    with snapshot(project_dir, ref, inside) as snap:
        moved = [snap.root / path for path in inside] or [snap.root / project_dir.name]
        checked = check(moved, snap.root / project_dir.name / project_file.name, environments)
        checked.diagnostics = [_renamed(d, snap.root, ref) for d in checked.diagnostics]
        yield checked, snap


def _moved(path: Path, project_dir: Path, root: Path) -> Path:
    absolute = path.resolve()
    try:
        return root / absolute.relative_to(project_dir.parent)
    except ValueError:
        raise ProjectError(f"{path} is not inside the project ({project_dir.parent})") from None


def _renamed(diagnostic: Diagnostic, root: Path, ref: str) -> Diagnostic:
    absolute = Path(diagnostic.file).resolve()
    try:
        name = f"{ref}:{absolute.relative_to(root.resolve()).as_posix()}"
    except ValueError:
        return diagnostic
    return Diagnostic(
        name, diagnostic.line, diagnostic.column, diagnostic.message, diagnostic.severity, diagnostic.code
    )
