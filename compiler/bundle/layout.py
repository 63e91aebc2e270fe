"""Lay rendered objects out as the generated/ tree that kustomize, Argo CD and Flux consume.

generated/<env>/kustomization.yaml               every file of the environment
generated/<env>/<namespace>/namespace.yaml       when the project asks for namespaces
generated/<env>/<namespace>/<model>/*.yaml       one object per file, plus a kustomization
generated/argocd/applicationset-<env>.yaml       one Argo CD Application per model directory
generated/flux/kustomization-<env>.yaml          one Flux Kustomization per environment
generated/.modelops-manifest.json                what modelops wrote (lets it replace the tree safely)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from compiler.bundle.bundle import Files
from compiler.resolve.resolved import ResolvedModel
from compiler.serialize import to_json, to_yaml
from compiler.spec.project import Project
from compiler.stamp import Stamp
from compiler.targets.docs.model_card import model_card
from compiler.targets.gitops import application_set, flux_kustomization
from compiler.targets.grafana.dashboards import model_dashboard, overview_dashboard
from compiler.targets.grafana.objects import dashboard_config_map, overview_config_map
from compiler.targets.kubernetes import namespace_object, render_model
from compiler.targets.links import model_dashboard_uid, overview_dashboard_uid
from compiler.targets.prometheus.analysis import analysis_template
from compiler.targets.prometheus.analysis_tests import analysis_tests
from compiler.targets.prometheus.objects import prometheus_rule
from compiler.targets.prometheus.rules import alerts_of, rule_file, rule_groups
from compiler.targets.prometheus.unittests import unit_tests

MANIFEST = ".modelops-manifest.json"
SYNC_DIRS = ("argocd", "flux")
KUSTOMIZATION = "kustomization.yaml"


_KUSTOMIZATION_HEAD = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
# Paths of DNS-label and file-name characters with a slash in them: no YAML resolver matches
# them (not a number, bool, null or date), so the dumper writes them as plain scalars.
_PLAIN_PATH = re.compile(r"[a-z0-9][a-z0-9._-]*(?:/[a-z0-9][a-z0-9._-]*)+")


def _kustomization(resources: Iterable[str]) -> bytes:
    listed = sorted(resources)
    if listed and all(_PLAIN_PATH.fullmatch(path) for path in listed):
        # The bytes the YAML dumper writes, without it walking an environment's ~15k nodes.
        return (_KUSTOMIZATION_HEAD + "".join(f"- {path}\n" for path in listed)).encode()
    return to_yaml(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": listed,
        }
    )


def environment_paths(environment: str) -> tuple[str, ...]:
    """Path prefixes that belong to one environment (for compiling one environment alone)."""
    return (
        f"{environment}/",
        f"argocd/applicationset-{environment}.yaml",
        f"flux/kustomization-{environment}.yaml",
    )


# (file name in the model's directory, content, whether it is a Kubernetes object)
ModelFile = tuple[str, bytes, bool]
# (file name, the document before serialisation, whether it is a Kubernetes object)
ModelDocument = tuple[str, dict[str, Any], bool]
Job = tuple[ResolvedModel, Stamp, tuple[tuple[str, str], ...]]


def model_documents(job: Job) -> list[ModelDocument]:
    """Every document of one model in one environment: objects, rules and tests, dashboard."""
    model, stamp, environments = job
    docs: list[ModelDocument] = [(r.filename, r.body, True) for r in render_model(model, stamp)]
    groups = rule_groups(model, model.alerting)
    dashboard = model_dashboard(model, list(environments))
    dashboard_json = to_json(dashboard, finite=True)  # once: dashboard.json, and the text its ConfigMap holds
    uid = model_dashboard_uid(model.environment, model.name)
    docs += [
        ("model-card.md", {"markdown": model_card(model, alerts_of(groups))}, False),
        ("prometheusrule.yaml", prometheus_rule(model, groups, stamp), True),
        ("rules.yaml", rule_file(groups), False),
        ("rules.test.yaml", unit_tests(model, groups), False),
        ("dashboard.json", Serialised(dashboard, dashboard_json), False),
        (
            "dashboard-configmap.yaml",
            dashboard_config_map(model, dashboard_json.decode(), uid, stamp),
            True,
        ),
    ]
    if (template := analysis_template(model, stamp)) is not None:  # a canary's AnalysisTemplate
        docs += [
            ("analysistemplate.yaml", template, True),
            ("analysis.test.yaml", analysis_tests(model), False),
        ]
    return docs


class Serialised(dict[str, Any]):
    """A document whose bytes were made while rendering (the dashboard: its ConfigMap holds its
    JSON): model_files writes those rather than serialise it again. The document is plain data
    orjson read, so no float in it is NaN or infinite: `serialise` relies on that."""

    def __init__(self, document: dict[str, Any], content: bytes) -> None:
        super().__init__(document)
        self.content = content


def serialise(filename: str, document: dict[str, Any]) -> bytes:
    """A document's bytes, made from the document (never the ones a Serialised carries) the way
    compile makes them: a dashboard, plain data orjson read, holds no NaN."""
    if filename.endswith(".md"):
        text: str = document["markdown"]
        return text.encode()
    if filename.endswith(".json"):
        return to_json(document, finite=isinstance(document, Serialised))
    return to_yaml(document)


def model_files(job: Job) -> list[ModelFile]:
    """One model's files, serialised."""
    return [
        (name, doc.content if isinstance(doc, Serialised) else serialise(name, doc), is_object)
        for name, doc, is_object in model_documents(job)
    ]


def directory_files(job: Job) -> list[ModelFile]:
    """Every file of one model's directory, its kustomization included (what compile's worker
    processes run)."""
    files = model_files(job)
    names = {name for name, _, _ in files}
    if len(names) != len(files) or KUSTOMIZATION in names:
        raise ValueError(f"two outputs want the same file name in {model_directory(job[0])}")
    objects = [name for name, _, is_an_object in files if is_an_object]
    return [*files, (KUSTOMIZATION, _kustomization(objects), False)]


NOT_OBJECTS = frozenset(
    {"model-card.md", "rules.yaml", "rules.test.yaml", "analysis.test.yaml", "dashboard.json"}
)


def is_object(filename: str) -> bool:
    """Whether a file in a model's directory is a Kubernetes object (and so in the kustomization)."""
    return filename not in NOT_OBJECTS and filename != KUSTOMIZATION


def model_directory(model: ResolvedModel) -> str:
    return f"{model.environment}/{model.namespace}/{model.name}"


@dataclass(frozen=True)
class KeptModel:
    """A model directory that stays as the last compile wrote it, because its inputs did not
    change: the environment's kustomization and overview still count it, nothing re-renders it."""

    environment: str
    namespace: str
    name: str
    filenames: tuple[str, ...]  # every file in the directory, its kustomization.yaml included

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.environment, self.namespace, self.name)


ModelKey = tuple[str, str, str]  # (environment, namespace, model)


def build_bundle(
    rendered: Iterable[tuple[ModelKey, list[str]]],
    project: Project,
    environments: list[str],
    kept: Sequence[KeptModel],
    bundle: Files,
) -> None:
    """The environments' files for the chosen environments (the same bytes on every run), each
    to `bundle`: kustomizations, namespaces, overviews, Argo CD and Flux. `rendered` are the
    models rendered (their directories' files already went their way: directory_files), each
    with the names of its object files, in the order of their keys; `kept` model directories
    stay as they are on disk. One model at a time is held."""
    names = tuple((env.name, env.namespace) for env in project.environments)
    object_files: dict[ModelKey, tuple[str, ...]] = {
        k.key: _interned(f for f in k.filenames if is_object(f))
        for k in kept
        if k.environment in environments
    }
    for key, objects in rendered:
        if key in object_files:
            raise ValueError(f"model {'/'.join(key)} is both rendered and kept")
        object_files[key] = _interned(objects)
    for environment in environments:
        env_files = [
            f"{namespace}/{name}/{filename}"
            for (env, namespace, name), filenames in object_files.items()
            if env == environment
            for filename in filenames
        ]
        model_count = sum(1 for key in object_files if key[0] == environment)
        env_config = project.environment(environment)
        if env_config is not None and env_config.createNamespace:
            path = f"{env_config.namespace}/namespace.yaml"
            bundle.add(
                f"{environment}/{path}",
                to_yaml(namespace_object(env_config.namespace, project.metadata.name)),
            )
            env_files.append(path)
        if env_config is not None and model_count:
            env_files += _overview(bundle, environment, env_config.namespace, model_count, project, names)
        bundle.add(f"{environment}/{KUSTOMIZATION}", _kustomization(env_files))
        bundle.add(
            f"argocd/applicationset-{environment}.yaml", to_yaml(application_set(project, environment))
        )
        bundle.add(
            f"flux/kustomization-{environment}.yaml", to_yaml(flux_kustomization(project, environment))
        )


_seen_names: dict[tuple[str, ...], tuple[str, ...]] = {}


def _interned(names: Iterable[str]) -> tuple[str, ...]:
    """One shared tuple per list of file names: most models have the same, so thousands of
    models hold one copy."""
    listed = tuple(names)
    if len(_seen_names) > 1000:
        _seen_names.clear()
    return _seen_names.setdefault(listed, listed)


def _overview(
    bundle: Files,
    environment: str,
    namespace: str,
    model_count: int,
    project: Project,
    environments: tuple[tuple[str, str], ...],
) -> list[str]:
    """The environment's overview dashboard, beside the namespace's model directories."""
    dashboard = to_json(
        overview_dashboard(environment, namespace, model_count, list(environments)), finite=True
    )
    uid = overview_dashboard_uid(environment)
    configmap = overview_config_map(environment, namespace, project.metadata.name, dashboard.decode(), uid)
    bundle.add(f"{environment}/{namespace}/overview-dashboard.json", dashboard)
    path = f"{namespace}/overview-dashboard-configmap.yaml"
    bundle.add(f"{environment}/{path}", to_yaml(configmap))
    return [path]


def manifest_json(listing: Mapping[str, str], inputs: Mapping[str, str]) -> bytes:
    """json.dumps(manifest, indent=2, sort_keys=True) + newline, byte for byte, built line by line:
    with indent, json falls back to its pure-Python encoder, 60 ms for a 30k-file tree."""

    def block(mapping: Mapping[str, str]) -> str:
        if not mapping:
            return "{}"
        keys = sorted(mapping)
        if _plain("".join(mapping) + "".join(mapping.values())):  # paths and digests, as usual
            lines = '",\n    "'.join([key + '": "' + mapping[key] for key in keys])
            return '{\n    "' + lines + '"\n  }'
        lines = ",\n".join(f"    {_quote(key)}: {_quote(mapping[key])}" for key in keys)
        return "{\n" + lines + "\n  }"

    text = f'{{\n  "files": {block(listing)},\n  "generator": "modelops",\n  "inputs": {block(inputs)}\n}}\n'
    return text.encode()


_JSON_PLAIN = bytes(c for c in range(0x20, 0x7F) if c not in b'"\\')


def _plain(text: str) -> bool:
    """Whether JSON writes `text` between quotes as it is: printable ASCII, no quote or backslash."""
    return text.isascii() and not text.encode().translate(None, _JSON_PLAIN)


def _quote(text: str) -> str:
    quoted: str = json.encoder.encode_basestring_ascii(text)
    return quoted
