"""The check of each environment's merged spec: types, semantic checks, policies.

A spec is valid on its own only after the project's defaults and its environment overlay are
merged in (an overlay can set a replica count a policy refuses, or leave no runtime image), so
this step runs between the resolver's merge and its building of the IR. Every diagnostic points
at the file and line the offending value came from, through the merged position map.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from compiler.diagnostics import Diagnostic, Found
from compiler.spec.catalog import LoadedSpec
from compiler.spec.checks import check_model
from compiler.spec.errors import diagnostics_from
from compiler.spec.model import ModelSpec
from compiler.spec.policies import check_policies
from compiler.spec.project import EnvironmentConfig, Project
from compiler.spec.yamlsource import PositionMap


@dataclass(frozen=True)
class MergedSpec:
    """One spec's raw data for one environment, defaults and overlay merged in, with where
    each value was written."""

    loaded: LoadedSpec
    environment: EnvironmentConfig
    data: dict[str, Any]
    positions: PositionMap


@dataclass(frozen=True)
class CheckedSpec:
    """A merged spec that passed every check: typed, and with the runtime image it runs."""

    loaded: LoadedSpec
    environment: EnvironmentConfig
    spec: ModelSpec
    image: str


def check_environment(project: Project, merged: MergedSpec) -> tuple[CheckedSpec | None, list[Diagnostic]]:
    """Check one merged spec; None with the errors (and any warnings) when it fails."""
    document = merged.loaded.document
    environment = merged.environment.name
    try:
        spec = ModelSpec.model_validate(merged.data)
    except ValidationError as err:
        return None, diagnostics_from(err, ModelSpec, merged.positions, document.file)
    problems = check_model(spec, merged.positions, document.file)
    image = spec.spec.serving.image
    problems += check_policies(project.policies, environment, spec, image, merged.positions, document.file)
    if image is None:
        problems.append(
            Diagnostic.at(
                document.at(("spec", "serving")),
                f"no runtime image for environment {environment}: set spec.serving.image, or "
                "defaults.serving.image in the project file",
                code="image",
            )
        )
    if any(p.is_error for p in problems) or image is None:
        return None, problems
    return CheckedSpec(merged.loaded, merged.environment, spec, image), problems


def check_merged(project: Project, merged: Iterable[MergedSpec]) -> tuple[list[CheckedSpec], Found]:
    """Check every merged spec (consumed one at a time): those that passed, and what each
    spec's check for each environment found."""
    passed: list[CheckedSpec] = []
    found: Found = {}
    for one in merged:
        checked, problems = check_environment(project, one)
        found.setdefault((one.loaded.source, one.environment.name), []).extend(problems)
        if checked is not None:
            passed.append(checked)
    return passed, found
