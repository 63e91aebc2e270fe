"""`gitops.*` in the project file: each field is validated as what it names in the Argo CD
ApplicationSet and the Flux Kustomization, and nothing of the project's text can act as an
Argo CD Go template (the ApplicationSet has goTemplate: true)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from compiler.spec.project import GitOps, Project
from compiler.targets.gitops import application_set
from tests.conftest import SPECS, Result

TEMPLATE_ACTION = re.compile(r"\{\{.*?\}\}")
# The actions modelops itself writes into the ApplicationSet template.
OUR_ACTIONS = {"{{ .path.basename }}", "{{ .path.path }}", '{{ "{{" }}'}
HOSTILE = '{{ env "HOME" }}'


def modelops(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess, as CI runs it."""
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "compiler", *map(str, args)], cwd=cwd, capture_output=True, text=True, env=env
    )


def _with_gitops(project: Path, **fields: str) -> dict[str, int]:
    """Set gitops fields in the project copy's modelops.yaml; returns the line of each field."""
    path = project / "specs" / "modelops.yaml"
    text = path.read_text()
    head, _, _ = text.partition("gitops:\n")
    lines = [f"  {name}: {json.dumps(value)}" for name, value in fields.items()]
    path.write_text(head + "gitops:\n" + "\n".join(lines) + "\n")
    first = head.count("\n") + 2
    return {name: first + i for i, name in enumerate(fields)}


HOSTILE_FIELDS = {
    "argocdNamespace": ("NOT A DNS NAME", "is not a DNS-1123 label"),
    "fluxNamespace": ("Flux_System", "is not a DNS-1123 label"),
    "revision": (HOSTILE, "is not a Git branch, tag or commit"),
    "repoURL": ("https://example.com/{{ .path.path }}", "is not a Git URL"),
    "path": ("../outside", "is not a directory relative to the repository root"),
    "fluxSource": ("My Source", "is not a Kubernetes object name"),
    "argocdProject": (HOSTILE, "is not a Kubernetes object name"),
}


def test_every_gitops_field_is_refused_at_its_line(project: Path) -> None:
    lines = _with_gitops(project, **{field: value for field, (value, _) in HOSTILE_FIELDS.items()})
    validated = modelops("validate", "specs/", cwd=project)
    assert validated.returncode == 1, validated.stdout + validated.stderr
    assert "Traceback" not in validated.stderr
    for field, (_, message) in HOSTILE_FIELDS.items():
        pattern = rf"specs/modelops\.yaml:{lines[field]}:\d+: error: gitops\.{field}: .*{re.escape(message)}"
        assert re.search(pattern, validated.stdout), (field, validated.stdout)
    compiled = modelops("compile", "specs/", cwd=project)
    assert compiled.returncode == 1
    assert not (project / "generated").exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("revision", "main..evil", "is not a Git branch, tag or commit"),
        ("revision", "heads/x.lock", "is not a Git branch, tag or commit"),
        ("revision", "main\n", "is not a Git branch, tag or commit"),
        ("revision", "@{-1}", "is not a Git branch, tag or commit"),
        ("repoURL", "https://example.com/a b.git", "is not a Git URL"),
        ("repoURL", "file:///etc", "is not a Git URL"),
        ("path", "/generated", "is not a directory relative to the repository root"),
        ("path", "generated/*", "is not a directory relative to the repository root"),
        ("path", "generated/.git", "is not a directory relative to the repository root"),
    ],
)
def test_more_malformed_gitops_values(
    cli: Callable[..., Result], project: Path, field: str, value: str, message: str
) -> None:
    line = _with_gitops(project, **{field: value})[field]
    result = cli("validate", project / "specs")
    assert result.code == 1, result.out
    assert re.search(
        rf"modelops\.yaml:{line}:\d+: error: gitops\.{field}: .*{re.escape(message)}", result.out
    )


def test_valid_gitops_fields_reach_argo_cd_and_flux(project: Path) -> None:
    _with_gitops(
        project,
        repoURL="git@github.com:acme/modelops.git",
        revision="refs/heads/release/1.0",
        path="deploy/generated",
        fluxSource="acme.modelops",
        argocdProject="ml-platform",
        argocdNamespace="argo",
        fluxNamespace="flux",
    )
    result = modelops("compile", "specs/", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    appset = yaml.safe_load((project / "generated/argocd/applicationset-production.yaml").read_text())
    assert appset["metadata"]["namespace"] == "argo"
    namespaces, models = appset["spec"]["generators"]
    assert namespaces["git"]["directories"] == [{"path": "deploy/generated/production/*"}]
    assert models["git"]["repoURL"] == "git@github.com:acme/modelops.git"
    assert models["git"]["directories"] == [{"path": "deploy/generated/production/*/*"}]
    spec = appset["spec"]["template"]["spec"]
    assert spec["project"] == "ml-platform"
    assert spec["source"]["targetRevision"] == "refs/heads/release/1.0"
    assert spec["destination"]["namespace"] == "{{ index .path.segments 3 }}"
    flux = yaml.safe_load((project / "generated/flux/kustomization-production.yaml").read_text())
    assert flux["metadata"]["namespace"] == "flux"
    assert flux["spec"]["path"] == "./deploy/generated/production"
    assert flux["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "acme.modelops"}


def template_strings(node: Any) -> list[str]:
    """Every string in a template, in document order: what Argo CD renders one by one."""
    if isinstance(node, dict):
        return [s for value in node.values() for s in template_strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in template_strings(value)]
    return [node] if isinstance(node, str) else []


# Argo CD renders each string of an ApplicationSet's template on its own with Go's
# text/template, missingkey=error (applicationset/utils.Render); the sprig functions it adds
# are not needed by what modelops writes, and `env` is one Argo CD removes anyway.
GO_RENDER = """\
package main

import (
	"encoding/json"
	"os"
	"strings"
	"text/template"
)

func main() {
	var in struct {
		Params  map[string]any `json:"params"`
		Strings []string       `json:"strings"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		panic(err)
	}
	out := []map[string]string{}
	for _, text := range in.Strings {
		tmpl, err := template.New("").Option("missingkey=error").Parse(text)
		if err == nil {
			var rendered strings.Builder
			if err = tmpl.Execute(&rendered, in.Params); err == nil {
				out = append(out, map[string]string{"rendered": rendered.String()})
				continue
			}
		}
		out = append(out, map[string]string{"error": err.Error()})
	}
	json.NewEncoder(os.Stdout).Encode(out)
}
"""


def go_render(strings: list[str], params: dict[str, Any], workdir: Path) -> list[dict[str, str]]:
    go = shutil.which("go")
    assert go, "Go is needed by the test suite (tests/testenv builds the control plane with it)"
    (workdir / "render.go").write_text(GO_RENDER)
    env = {**os.environ, "GOFLAGS": "", "GO111MODULE": "off", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
    result = subprocess.run(
        [go, "run", "render.go"],
        input=json.dumps({"params": params, "strings": strings}),
        cwd=workdir,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    rendered: list[dict[str, str]] = json.loads(result.stdout)
    return rendered


def test_project_text_in_the_application_set_stays_literal(tmp_path: Path) -> None:
    """Validation refuses braces in every gitops field; should one ever get through, the
    ApplicationSet still carries it as text, never as a template action."""
    project = Project.model_validate(yaml.safe_load((SPECS / "modelops.yaml").read_text()))
    hostile = GitOps.model_construct(
        repoURL=f"https://example.com/{HOSTILE}.git", revision=HOSTILE, argocdProject=HOSTILE
    )
    appset = application_set(project.model_copy(update={"gitops": hostile}), "production")
    template = appset["spec"]["template"]
    strings = template_strings(template)
    for text in strings:
        assert set(TEMPLATE_ACTION.findall(text)) <= OUR_ACTIONS | {"{{ index .path.segments 2 }}"}, text
    directory = "generated/production/ml-production/credit-default"
    params = {
        "path": {
            "path": directory,
            "basename": "credit-default",
            "segments": directory.split("/"),
        }
    }
    rendered = go_render([*strings, HOSTILE], params, tmp_path)
    *ours, raw = rendered
    assert "error" in raw and 'function "env" not defined' in raw["error"]  # the renderer is live
    values = dict(zip(strings, (r.get("rendered", r.get("error")) for r in ours), strict=True))
    spec = template["spec"]
    assert values[spec["source"]["targetRevision"]] == HOSTILE
    assert values[spec["source"]["repoURL"]] == f"https://example.com/{HOSTILE}.git"
    assert values[spec["project"]] == HOSTILE
    assert values[spec["source"]["path"]] == directory
    assert values[spec["destination"]["namespace"]] == "ml-production"
    assert values[template["metadata"]["name"]] == "production-credit-default"
