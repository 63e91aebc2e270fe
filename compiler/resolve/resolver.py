"""Resolve every spec for every environment into the immutable IR, checking as it goes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from compiler.diagnostics import Diagnostic, Severity
from compiler.resolve.merge import Layer, merge_layers
from compiler.resolve.resolved import ResolvedModel
from compiler.spec.catalog import Catalog, LoadedSpec
from compiler.spec.checks import check_model
from compiler.spec.errors import diagnostics_from
from compiler.spec.model import ModelSpec
from compiler.spec.policies import check_policies
from compiler.spec.project import EnvironmentConfig, Project
from compiler.spec.yamlsource import PositionMap, SourceDocument

_SPEC_SECTIONS = ("model", "evaluation", "serving", "monitoring")


@dataclass
class Resolution:
    models: list[ResolvedModel] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def resolve_catalog(catalog: Catalog, environments: list[str] | None = None) -> Resolution:
    """Resolve all specs for the chosen environments (all when None)."""
    result = Resolution()
    chosen = [env for env in catalog.project.environments if environments is None or env.name in environments]
    owners: dict[tuple[str, str, str], LoadedSpec] = {}
    for loaded in catalog.specs:
        for env in chosen:
            resolved, problems = resolve_one(catalog, loaded, env)
            result.diagnostics.extend(problems)
            if resolved is None:
                continue
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


def resolve_one(
    catalog: Catalog, loaded: LoadedSpec, env: EnvironmentConfig
) -> tuple[ResolvedModel | None, list[Diagnostic]]:
    document = loaded.document
    project = catalog.project
    data, positions = merged_spec_data(project, catalog.project_document, document, env.name)
    try:
        spec = ModelSpec.model_validate(data)
    except ValidationError as err:
        return None, diagnostics_from(err, ModelSpec, positions, document.file)
    problems = check_model(spec, positions, document.file)
    image = spec.spec.serving.image
    problems += check_policies(project.policies, env.name, spec, image, positions, document.file)
    if image is None:
        problems.append(
            Diagnostic.at(
                document.at(("spec", "serving")),
                f"no runtime image for environment {env.name}: set spec.serving.image, or "
                "defaults.serving.image in the project file",
                code="image",
            )
        )
    if any(p.is_error for p in problems) or image is None:
        return None, problems
    metadata = spec.metadata
    body = spec.spec
    record = catalog.evaluations.get((metadata.name, body.model.version.text))
    if record is not None and body.model.sha256 is not None and record.artifact_sha256 != body.model.sha256:
        problems.append(
            Diagnostic.at(
                document.at(("spec", "model", "sha256")),
                f"the evaluation record of {metadata.name} {body.model.version.text} was made from another "
                "artifact; run `modelops evaluate` again",
                severity=Severity.WARNING,
                code="evaluation",
            )
        )
        record = None
    resolved = ResolvedModel(
        name=metadata.name,
        environment=env.name,
        namespace=env.namespace,
        kube_context=env.context,
        create_namespace=env.createNamespace,
        project=project.metadata.name,
        team=metadata.team,
        description=metadata.description,
        labels=dict(metadata.labels),
        source=loaded.source,
        model=body.model,
        evaluation=body.evaluation,
        serving=body.serving,
        image=image,
        monitoring=body.monitoring,
        grafana=project.defaults.grafana,
        evaluated=record,
    )
    return resolved, problems
