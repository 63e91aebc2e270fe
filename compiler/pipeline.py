"""The front half of the pipeline shared by every command: load, validate, resolve."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from compiler.diagnostics import Diagnostic, unique_sorted
from compiler.errors import UsageError
from compiler.resolve.resolved import ResolvedModel
from compiler.resolve.resolver import resolve_catalog
from compiler.spec.catalog import Catalog, load_catalog


@dataclass
class Checked:
    catalog: Catalog | None
    models: list[ResolvedModel] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.catalog is not None and not any(d.is_error for d in self.diagnostics)


def check(paths: list[Path], project: Path | None = None, environments: list[str] | None = None) -> Checked:
    """Load every spec and resolve it for every (chosen) environment, collecting all problems."""
    catalog, diagnostics = load_catalog(paths, project)
    if catalog is None:
        return Checked(None, [], unique_sorted(diagnostics))
    if environments:
        declared = [env.name for env in catalog.project.environments]
        unknown = [env for env in environments if env not in declared]
        if unknown:
            raise UsageError(
                f"unknown environment {', '.join(unknown)}; the project declares {', '.join(declared)}"
            )
    resolution = resolve_catalog(catalog, environments)
    return Checked(catalog, resolution.models, unique_sorted(diagnostics + resolution.diagnostics))
