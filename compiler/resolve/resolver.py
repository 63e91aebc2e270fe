"""Resolve every spec for every environment into the immutable IR, in two halves around the check.

`merge_catalog` layers each spec over the project's defaults with its environment overlay on top;
the caller checks the merged specs (`compiler.spec.check_merged`); `build_models` turns the ones
that passed into ResolvedModels, one per (model, environment), refusing duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from compiler.diagnostics import Diagnostic, Found, Severity
from compiler.resolve.merge import Layer, merge_layers
from compiler.resolve.resolved import ResolvedModel
from compiler.spec.catalog import Catalog, LoadedSpec
from compiler.spec.check_merged import CheckedSpec, MergedSpec
from compiler.spec.model import ModelArtifact, Spec
from compiler.spec.project import EnvironmentConfig, Project
from compiler.spec.records import EvaluationRecord
from compiler.spec.yamlsource import PositionMap, SourceDocument

_SPEC_SECTIONS = ("model", "evaluation", "serving", "monitoring", "rollout")


@dataclass
class Resolution:
    models: list[ResolvedModel] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    found: Found = field(default_factory=dict)  # what building each (spec, environment) found


def chosen_environments(project: Project, environments: list[str] | None) -> list[EnvironmentConfig]:
    """The project's environments named in `environments` (all when None), in its order."""
    return [env for env in project.environments if environments is None or env.name in environments]


def undeclared_environments(project: Project, environments: list[str] | None) -> list[str]:
    """The names in `environments` the project does not declare (the full check refuses them)."""
    declared = {env.name for env in project.environments}
    return [name for name in environments or [] if name not in declared]


def merge_catalog(catalog: Catalog, environments: list[str] | None = None) -> Iterator[MergedSpec]:
    """Every spec merged for each chosen environment (all when None), one at a time."""
    chosen = chosen_environments(catalog.project, environments)
    for loaded in catalog.specs:
        for env in chosen:
            yield merge_spec(catalog, loaded, env)


def merge_spec(catalog: Catalog, loaded: LoadedSpec, env: EnvironmentConfig) -> MergedSpec:
    data, positions = merged_spec_data(catalog.project, catalog.project_document, loaded.document, env.name)
    return MergedSpec(loaded, env, data, positions)


def merged_spec_data(
    project: Project, project_doc: SourceDocument, document: SourceDocument, environment: str
) -> tuple[dict[str, Any], PositionMap]:
    """The spec's raw data with project defaults below it and its overlay for `environment` above."""
    data = document.data
    body = data.get("spec") or {}
    overlay = (body.get("environments") or {}).get(environment) or {}
    defaults = project_doc.data.get("defaults") or {}
    layers = [
        Layer(
            {k: v for k, v in defaults.items() if k in _SPEC_SECTIONS}, project_doc.positions, ("defaults",)
        ),
        Layer({k: v for k, v in body.items() if k != "environments"}, document.positions, ("spec",)),
        Layer(overlay, document.positions, ("spec", "environments", environment)),
    ]
    merged_body, positions = merge_layers(layers, ("spec",))
    merged = {k: v for k, v in data.items() if k != "spec"}
    merged["spec"] = merged_body
    for key in merged:
        if key != "spec":
            positions.copy_subtree(document.positions, (key,), (key,), merged[key])
    if (top := document.positions.values.get(())) is not None:
        positions.values[()] = top
    return merged, positions


def build_models(catalog: Catalog, checked: Iterable[CheckedSpec]) -> Resolution:
    """The IR of every checked spec, sorted; a second model of the same name in the same
    namespace and environment is an error pointing at the first."""
    result = Resolution()
    owners: dict[tuple[str, str, str], LoadedSpec] = {}
    for one in checked:
        loaded = one.loaded
        resolved, problems = build_model(catalog, one)
        result.diagnostics.extend(problems)
        result.found.setdefault((loaded.source, one.environment.name), []).extend(problems)
        key = resolved.key
        if key in owners:
            first = owners[key]
            result.diagnostics.append(
                Diagnostic.at(
                    loaded.document.at(("metadata", "name")),
                    f"model {resolved.name!r} is already defined in {first.document.file} "
                    f"(line {first.document.at(('metadata', 'name')).line}); model names must be "
                    f"unique per namespace ({resolved.namespace} in {resolved.environment})",
                    code="duplicate-model",
                )
            )
            continue
        owners[key] = loaded
        result.models.append(resolved)
    result.models.sort(key=lambda m: m.key)
    return result


def build_model(catalog: Catalog, checked: CheckedSpec) -> tuple[ResolvedModel, list[Diagnostic]]:
    """One ResolvedModel, with the matching evaluation record (a warning when it is stale)."""
    document = checked.loaded.document
    project = catalog.project
    env = checked.environment
    metadata = checked.spec.metadata
    body = checked.spec.spec
    problems: list[Diagnostic] = []
    pins = [("model", body.model.version.text, body.model.sha256, "")]
    if body.candidate is not None:
        pins.append(("candidate", body.candidate.version.text, body.candidate.sha256, " (the candidate)"))
    for section, version, sha256, role in pins:
        if _stale(catalog, metadata.name, version, sha256):
            overlay = ("spec", "environments", env.name, section, "sha256")
            problems.append(
                Diagnostic.at(
                    document.positions.values.get(overlay) or document.at(("spec", section, "sha256")),
                    f"the evaluation record of {metadata.name} {version}{role} was made from another "
                    "artifact; run `modelops evaluate` again",
                    severity=Severity.WARNING,
                    code="evaluation",
                )
            )
    record = catalog.evaluations.get((metadata.name, body.model.version.text))
    if _stale(catalog, metadata.name, body.model.version.text, body.model.sha256):
        record = None
    served, delivery = _delivery(catalog, metadata.name, body, record)
    resolved = ResolvedModel(
        name=metadata.name,
        environment=env.name,
        namespace=env.namespace,
        kube_context=env.context,
        create_namespace=env.createNamespace,
        alerting=env.alerts,
        project=project.metadata.name,
        team=metadata.team,
        description=metadata.description,
        labels=dict(metadata.labels),
        source=checked.loaded.source,
        model=served,
        evaluation=body.evaluation,
        serving=body.serving,
        image=checked.image,
        monitoring=body.monitoring,
        grafana=project.defaults.grafana,
        prometheus=env.prometheus,
        **delivery,
    )
    return resolved, problems


def _delivery(
    catalog: Catalog, name: str, body: Spec, record: EvaluationRecord | None
) -> tuple[ModelArtifact, dict[str, Any]]:
    """What the pods serve, and the progressive-delivery fields of the IR (see ResolvedModel)."""
    fields: dict[str, Any] = {"rollout": body.rollout, "candidate": body.candidate, "evaluated": record}
    candidate = body.candidate
    if candidate is None:
        return body.model, fields
    challenger = body.model.model_copy(
        update={"version": candidate.version, "uri": candidate.uri, "sha256": candidate.sha256}
    )
    challenger_record = catalog.evaluations.get((name, candidate.version.text))
    if _stale(catalog, name, candidate.version.text, candidate.sha256):
        challenger_record = None
    if body.rollout.strategy == "shadow":
        return body.model, fields | {"shadow": challenger, "shadow_evaluated": challenger_record}
    return challenger, fields | {
        "evaluated": challenger_record,
        "stable": body.model,
        "stable_evaluated": record,
    }


def _stale(catalog: Catalog, name: str, version: str, sha256: str | None) -> bool:
    """Whether the record of that version was measured on an artifact other than the pinned one."""
    record = catalog.evaluations.get((name, version))
    return record is not None and sha256 is not None and record.artifact_sha256 != sha256
