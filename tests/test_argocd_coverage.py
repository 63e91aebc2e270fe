"""What Argo CD syncs through the generated ApplicationSets is what Flux and `kubectl kustomize
generated/<env>` see: every object, the Namespace with its Pod Security labels included.

The ApplicationSet is evaluated the way Argo CD 3.5 does it, step by step: the git directory
generator matches the repository's directories with Go's path.Match (applicationset/generators
/git.go filterApps), each generator's template is filled from the set's (mergo.Merge), every
template string is rendered by Go's text/template, and each Application's path is built as
kustomize when it holds a kustomization.yaml and no `directory` is set, else read as a
directory of manifests (reposerver findManifests: *.yaml|yml|json, include/exclude globs).
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, SPECS
from tests.test_gitops_fields import go_render, template_strings

KUBECTL = REPO / ".venv" / "bin" / "kubectl"
ENVIRONMENTS = ("staging", "production")
MANIFEST_FILE = re.compile(r"^.*\.(yaml|yml|json|jsonnet)$")
POD_SECURITY = "pod-security.kubernetes.io/enforce"


@dataclass(frozen=True)
class Application:
    name: str
    spec: dict[str, Any]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository root holding the bundled specs compiled now (not the committed generated/)."""
    root = tmp_path_factory.mktemp("argocd")
    compiled = subprocess.run(
        [str(REPO / ".venv/bin/modelops"), "compile", str(SPECS), "--out", str(root / "generated"), "--full"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    return root


@pytest.fixture(scope="module")
def apps(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Application]]:
    """Each environment's Applications, as Argo CD generates them from the compiled tree."""
    workdir = tmp_path_factory.mktemp("go-render")
    return {env: applications(_appset(repo, env), repo, workdir) for env in ENVIRONMENTS}


def _go_path_match(pattern: str, name: str) -> bool:
    """Go's path.Match for the patterns modelops writes: '*' stays within one path segment."""
    if "[" in pattern or "\\" in pattern:
        raise NotImplementedError(pattern)
    regex = "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name) is not None


def _gobwas_glob(pattern: str, name: str) -> bool:
    """gobwas/glob without separators, as Argo CD's directory include/exclude use it."""
    if "[" in pattern or "\\" in pattern:
        raise NotImplementedError(pattern)
    out, depth = [], 0
    for c in pattern:
        if c == "{":
            out.append("(?:")
            depth += 1
        elif c == "}" and depth:
            out.append(")")
            depth -= 1
        elif c == "," and depth:
            out.append("|")
        else:
            out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
    return re.fullmatch("".join(out), name, re.S) is not None


def _directories(root: Path) -> list[str]:
    """Every directory of the repository, hidden ones skipped (reposerver GetGitDirectories)."""
    found = []
    for current, dirs, _ in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [str((Path(current) / d).relative_to(root)) for d in dirs]
    return found


def _filled(template: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """mergo.Merge(generator's template, set's template): empty fields take the set's value."""
    merged = copy.deepcopy(template)
    for key, value in base.items():
        if isinstance(merged.get(key), dict) and isinstance(value, dict):
            merged[key] = _filled(merged[key], value)
        elif not merged.get(key):
            merged[key] = copy.deepcopy(value)
    return merged


def _render(node: Any, values: Iterator[str]) -> Any:
    if isinstance(node, dict):
        return {key: _render(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [_render(value, values) for value in node]
    return next(values) if isinstance(node, str) else node


def applications(appset: dict[str, Any], root: Path, workdir: Path) -> list[Application]:
    """The Applications the ApplicationSet's git directory generators make from the tree."""
    spec = appset["spec"]
    assert spec["goTemplate"] is True
    all_paths = _directories(root)
    apps = []
    for generator in spec["generators"]:
        (kind,) = generator
        assert kind == "git" and "files" not in generator["git"], generator
        git = generator["git"]
        template = _filled(git.get("template", {}), spec["template"])
        for path in all_paths:
            matches = [(_go_path_match(d["path"], path), d.get("exclude", False)) for d in git["directories"]]
            if not any(m and not ex for m, ex in matches) or any(m and ex for m, ex in matches):
                continue
            params = {"path": {"path": path, "basename": Path(path).name, "segments": path.split("/")}}
            strings = template_strings(template)
            results = go_render(strings, params, workdir)
            assert all("rendered" in r for r in results), results
            rendered = _render(template, iter(r["rendered"] for r in results))
            apps.append(Application(rendered["metadata"]["name"], rendered["spec"]))
    return apps


def _objects_of(app: Application, root: Path) -> list[dict[str, Any]]:
    """What Argo CD's repo server makes of the Application's source (Kustomize or Directory)."""
    source = app.spec["source"]
    path = root / source["path"]
    directory = source.get("directory")
    if directory is None and (path / "kustomization.yaml").is_file():
        return _kustomize(path)
    directory = directory or {}
    files = sorted(path.rglob("*") if directory.get("recurse") else path.glob("*"))
    objects = []
    for file in files:
        relative = str(file.relative_to(path))
        if not file.is_file() or not MANIFEST_FILE.match(file.name):
            continue
        if directory.get("exclude") and _gobwas_glob(directory["exclude"], relative):
            continue
        if directory.get("include") and not _gobwas_glob(directory["include"], relative):
            continue
        docs = [d for d in yaml.safe_load_all(file.read_text()) if d is not None]
        # Argo CD refuses (not skips) a manifest file that is not a Kubernetes object
        assert all("kind" in d and "apiVersion" in d for d in docs), f"{app.name}: {relative}"
        objects += docs
    return objects


def _kustomize(path: Path) -> list[dict[str, Any]]:
    built = subprocess.run([str(KUBECTL), "kustomize", str(path)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    return [d for d in yaml.safe_load_all(built.stdout) if d is not None]


def _keyed(objects: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(o, sort_keys=True) for o in objects)


def _appset(root: Path, environment: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(
        (root / "generated" / "argocd" / f"applicationset-{environment}.yaml").read_text()
    )
    return document


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_argo_cd_syncs_exactly_what_kustomize_and_flux_see(
    repo: Path, apps: dict[str, list[Application]], environment: str
) -> None:
    names = [a.name for a in apps[environment]]
    assert len(set(names)) == len(names), names
    synced = []
    for app in apps[environment]:
        objects = _objects_of(app, repo)
        assert objects, f"{app.name} syncs nothing"
        for obj in objects:  # namespaced objects land in the Application's destination
            if obj["kind"] != "Namespace":
                assert obj["metadata"]["namespace"] == app.spec["destination"]["namespace"]
        synced += objects
    flux = yaml.safe_load((repo / "generated/flux" / f"kustomization-{environment}.yaml").read_text())
    assert flux["spec"]["path"] == f"./generated/{environment}"
    everything = _kustomize(repo / "generated" / environment)
    assert _keyed(synced) == _keyed(everything)
    kinds = {o["kind"] for o in synced}
    assert {"Namespace", "ConfigMap", "Deployment"} <= kinds  # the comparison saw real objects


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_namespace_argo_cd_syncs_carries_the_pod_security_labels(
    repo: Path, apps: dict[str, list[Application]], environment: str
) -> None:
    namespaces = {
        o["metadata"]["name"]: o
        for app in apps[environment]
        for o in _objects_of(app, repo)
        if o["kind"] == "Namespace"
    }
    for app in apps[environment]:
        policy = app.spec.get("syncPolicy", {})
        target = app.spec["destination"]["namespace"]
        if "CreateNamespace=true" in policy.get("syncOptions", []):  # Argo CD's own namespace
            labels = policy.get("managedNamespaceMetadata", {}).get("labels", {})
            assert labels.get(POD_SECURITY) == "restricted", app.name
        assert target in namespaces, f"{app.name}: no synced Application holds namespace {target}"
        assert namespaces[target]["metadata"]["labels"][POD_SECURITY] == "restricted"
        assert policy["automated"]["prune"] and policy["retry"]["limit"] > 0  # synced, retried


def test_the_emulated_matchers_follow_go_and_gobwas() -> None:
    """The two glob dialects differ on '/': Go's path.Match keeps '*' in a segment."""
    assert _go_path_match("generated/staging/*", "generated/staging/ml-staging")
    assert not _go_path_match("generated/staging/*", "generated/staging/ml-staging/model")
    assert _gobwas_glob("*.json", "sub/dashboard.json")
    assert _gobwas_glob("{namespace.yaml,*.json}", "namespace.yaml")
    assert not _gobwas_glob("*.json", "namespace.yaml")
