"""`--format json` keeps the shape docs/json/<command>.schema.json documents, for every command."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import git
import jsonschema
import pytest
from referencing import Registry, Resource

from compiler.cli.main import build_parser
from tests.conftest import REPO, Result

SCHEMAS = REPO / "docs" / "json"
# Commands without --format json, and why: their output is not a report.
NO_JSON = {
    "serve": "a server; its API is the Open Inference Protocol",
    "schema": "prints a JSON Schema already",
    "completion": "prints a shell script",
    "init": "writes files and names them",
    "new": "writes a file and names it",
}


def _registry() -> Registry[Any]:
    resources = []
    for path in SCHEMAS.glob("*.schema.json"):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


def conforms(command: str, output: str) -> Any:
    """Parse `output` and validate it against the command's schema; return the parsed document."""
    document = json.loads(output)
    schema = json.loads((SCHEMAS / f"{command}.schema.json").read_text())
    jsonschema.Draft202012Validator(schema, registry=_registry()).validate(document)
    return document


def _subcommands() -> dict[str, Any]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return dict(action.choices)  # type: ignore[arg-type]


def _format_choices(subparser: Any) -> tuple[str, ...]:
    for action in subparser._actions:
        if "--format" in action.option_strings:
            return tuple(action.choices)
    return ()


def test_every_schema_is_a_valid_json_schema() -> None:
    files = sorted(SCHEMAS.glob("*.schema.json"))
    assert files
    for path in files:
        schema = json.loads(path.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$id"].endswith(f"/{path.name}"), path.name


def test_every_command_has_json_output_and_a_schema() -> None:
    for name, subparser in _subcommands().items():
        if name in NO_JSON:
            continue
        assert "json" in _format_choices(subparser), f"`modelops {name}` has no --format json"
        assert (SCHEMAS / f"{name}.schema.json").is_file(), f"no docs/json/{name}.schema.json"


def test_validate(cli: Callable[..., Result], project: Path) -> None:
    result = cli("validate", project / "specs", "--format", "json")
    payload = conforms("validate", result.out)
    assert result.code == 0 and payload["valid"] and len(payload["models"]) == 4
    spec = project / "specs" / "credit-default.yaml"
    spec.write_text(spec.read_text().replace("task: classification", "task: clasification"))
    result = cli("validate", project / "specs", "--format", "json")
    payload = conforms("validate", result.out)
    assert result.code == 1 and not payload["valid"]
    assert payload["diagnostics"][0]["file"].endswith("credit-default.yaml")


def test_compile_write_check_and_invalid_specs(
    cli: Callable[..., Result], project: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    written = cli("compile", project / "specs", "--out", out, "--format", "json")
    payload = conforms("compile", written.out)
    assert written.code == 0 and payload["added"] and payload["check"] is False and payload["stale"] is None
    (out / "production" / "kustomization.yaml").unlink()
    checked = cli("compile", project / "specs", "--out", out, "--check", "--format", "json")
    payload = conforms("compile", checked.out)
    assert checked.code == 1 and payload["stale"] is True
    assert payload["added"] == ["production/kustomization.yaml"]
    spec = project / "specs" / "credit-default.yaml"
    spec.write_text(spec.read_text().replace("team: ", "team: Not A Label "))
    failed = cli("compile", project / "specs", "--out", out, "--format", "json")
    payload = conforms("compile", failed.out)
    assert failed.code == 1 and payload["valid"] is False and payload["errors"] >= 1


def test_evaluate_and_invalid_specs(cli: Callable[..., Result], project: Path) -> None:
    result = cli("evaluate", project / "specs", "--format", "json", "--no-write")
    payload = conforms("evaluate", result.out)
    assert result.code == 0 and payload["ok"] and payload["gates"] and payload["records"]
    spec = project / "specs" / "credit-default.yaml"
    spec.write_text(spec.read_text().replace("task: classification", "task: clasification"))
    result = cli("evaluate", project / "specs", "--format", "json", "--no-write")
    payload = conforms("evaluate", result.out)
    assert result.code == 1 and payload["valid"] is False


@pytest.fixture
def repo(project: Path, monkeypatch: pytest.MonkeyPatch) -> git.Repo:
    """The bundled project in a Git repository with two versions of credit-default."""
    repo = git.Repo.init(project, initial_branch="main")
    author = git.Actor("Alice Example", "alice@example.com")
    repo.git.add(A=True)
    repo.index.commit("Add the models", author=author, committer=author)
    spec = project / "specs" / "credit-default.yaml"
    spec.write_text(spec.read_text().replace("version: 1.4.0", "version: 1.5.0"))
    repo.git.add(A=True)
    repo.index.commit("credit-default 1.5.0", author=author, committer=author)
    monkeypatch.chdir(project)
    return repo


def test_diff_against_a_ref(cli: Callable[..., Result], repo: git.Repo) -> None:
    same = cli("diff", "specs", "--base", "HEAD", "--format", "json")
    assert same.code == 0 and conforms("diff", same.out)["changed"] is False
    spec = Path("specs/credit-default.yaml")
    spec.write_text(spec.read_text().replace("    port: 8080\n", "    port: 8081\n"))
    changed = cli("diff", "specs", "--base", "HEAD~1", "--format", "json")
    payload = conforms("diff", changed.out)
    assert changed.code == 1 and payload["changed"] and payload["models"] and payload["files"]
    assert payload["breaking"], "a new port breaks the model's clients"


def test_history(cli: Callable[..., Result], repo: git.Repo) -> None:
    result = cli("history", "credit-default", "--format", "json")
    payload = conforms("history", result.out)
    assert result.code == 0 and [v["version"] for v in payload] == ["1.4.0", "1.5.0"]


def test_version(cli: Callable[..., Result]) -> None:
    result = cli("version", "--format", "json")
    assert result.code == 0 and conforms("version", result.out)["version"]


@pytest.mark.cluster
def test_cluster_diff_and_apply(cli: Callable[..., Result], project: Path, tmp_path: Path) -> None:
    from tests.testenv import controlplane

    text = (project / "specs" / "modelops.yaml").read_text()
    (project / "specs" / "modelops.yaml").write_text(text.replace("ml-staging", "json-staging"))
    with controlplane.running(tmp_path / "plane") as plane:
        common = ["--env", "staging", "--context", "testenv", "--kubeconfig", str(plane.kubeconfig)]
        diff = cli("diff", project / "specs", *common, "--format", "json")
        assert diff.code == 1, diff.err
        assert {c["action"] for c in conforms("diff", diff.out)} == {"create"}
        dry = cli("apply", project / "specs", *common, "--dry-run", "--format", "json")
        payload = conforms("apply", dry.out)
        assert (
            dry.code == 0 and payload["environments"][0]["dry_run"] and payload["environments"][0]["changes"]
        )
        applied = cli("apply", project / "specs", *common, "--format", "json")
        payload = conforms("apply", applied.out)
        staging = payload["environments"][0]
        assert applied.code == 0 and payload["ok"] and staging["error"] is None
        assert {c["action"] for c in staging["changes"]} == {"create"}
        waited = cli("apply", project / "specs", *common, "--wait", "--timeout", "1", "--format", "json")
        payload = conforms("apply", waited.out)
        staging = payload["environments"][0]
        assert waited.code == 1 and not payload["ok"], "no controller runs the Deployments"
        assert staging["error"]["stage"] == "waiting for rollouts" and staging["unchanged"] > 0
