"""The stages read load -> validate -> resolve (merge, check, build) -> render -> write, each its own module."""

from __future__ import annotations

import ast
from pathlib import Path

from compiler.diagnostics import Severity, problems_in
from compiler.pipeline import check
from compiler.resolve.resolver import build_models, merge_catalog
from compiler.serialize import to_yaml
from compiler.spec.catalog import load_catalog
from compiler.spec.check_merged import check_merged
from compiler.targets.gitops import application_set, flux_kustomization
from tests.conftest import REPO, SPECS, spec_text

GENERATED = REPO / "generated"


def test_the_gitops_target_renders_the_committed_argocd_and_flux_files() -> None:
    catalog = check([SPECS]).catalog
    assert catalog is not None
    environments = [env.name for env in catalog.project.environments]
    assert environments
    for environment in environments:
        appset = GENERATED / "argocd" / f"applicationset-{environment}.yaml"
        flux = GENERATED / "flux" / f"kustomization-{environment}.yaml"
        assert to_yaml(application_set(catalog.project, environment)) == appset.read_bytes()
        assert to_yaml(flux_kustomization(catalog.project, environment)) == flux.read_bytes()


def _imports(path: Path) -> dict[str, set[str]]:
    """Module -> names imported from it (the module itself for `import m`)."""
    found: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.setdefault(node.module, set()).update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                found.setdefault(alias.name, set()).add(alias.name)
    return found


def test_the_resolver_merges_and_builds_and_leaves_the_checks_to_their_own_step() -> None:
    for path in sorted((REPO / "compiler" / "resolve").glob("*.py")):
        imports = _imports(path)
        checking = {"compiler.spec.checks", "compiler.spec.policies", "compiler.spec.errors"}
        assert not checking & imports.keys(), f"{path.name} checks specs itself: {checking & imports.keys()}"
        assert "ValidationError" not in imports.get("pydantic", set()), f"{path.name} validates specs itself"
        step = imports.get("compiler.spec.check_merged", set())
        assert step <= {"MergedSpec", "CheckedSpec"}, f"{path.name} runs the check step: {step}"


def test_the_merged_check_reports_a_policy_error_for_one_environment_only(project: Path) -> None:
    overlay = "  environments:\n    production: {serving: {replicas: {min: 1, max: 1}}}\n"
    spec = project / "specs" / "demo.yaml"
    spec.write_text(spec_text() + overlay)
    catalog, problems = load_catalog([spec])
    assert catalog is not None and not problems

    passed, found = check_merged(catalog.project, merge_catalog(catalog))

    errors = [d for d in problems_in(found) if d.severity is Severity.ERROR]
    assert [(d.code, d.line) for d in errors] == [("policy", spec_text().count("\n") + 2)]
    assert "'production-high-availability' (production): replicas.min is 1" in errors[0].message
    assert [(c.loaded.spec.metadata.name, c.environment.name) for c in passed] == [("demo-model", "staging")]
    resolution = build_models(catalog, passed)
    assert [(m.name, m.environment) for m in resolution.models] == [("demo-model", "staging")]
    assert not resolution.diagnostics


def test_a_duplicate_model_is_refused_when_the_models_are_built(project: Path) -> None:
    first, second = project / "specs" / "a.yaml", project / "specs" / "b.yaml"
    first.write_text(spec_text())
    second.write_text(spec_text())
    catalog, problems = load_catalog([first, second])
    assert catalog is not None and not problems
    passed, found = check_merged(catalog.project, merge_catalog(catalog, ["staging"]))
    assert not any(d.is_error for d in problems_in(found)) and len(passed) == 2

    resolution = build_models(catalog, passed)

    assert [(m.name, m.source) for m in resolution.models] == [("demo-model", "specs/a.yaml")]
    assert [(d.code, Path(d.file).name) for d in resolution.diagnostics] == [("duplicate-model", "b.yaml")]
