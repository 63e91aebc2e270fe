"""`modelops init` and `modelops new`: a project that works at once, and no file clobbered."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from compiler.cli.main import build_parser
from compiler.scaffold.project import PLACEHOLDER_REPO_URL, origin_url
from compiler.spec.project import Project
from tests.conftest import REPO, Result
from tests.test_workflows import tool


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "Shop Models"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    return root


@pytest.fixture
def initialised(repo: Path, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> Path:
    _git(repo, "remote", "add", "origin", "https://ci-bot:s3cret@github.com/acme/shop-models.git")
    monkeypatch.chdir(repo)
    result = cli("init")
    assert result.code == 0, result.err
    return repo


def test_init_validates_evaluates_and_compiles_at_once(initialised: Path, cli: Callable[..., Result]) -> None:
    assert cli("validate", "--strict").code == 0
    evaluated = cli("evaluate")
    assert evaluated.code == 0, evaluated.out + evaluated.err
    assert "0 failed" in evaluated.out
    assert cli("compile").code == 0
    assert cli("compile", "--check").code == 0
    assert (initialised / "generated" / "production" / "shop-models-production" / "example-churn").is_dir()


def test_init_pins_the_artifact_it_trained(initialised: Path) -> None:
    import hashlib

    spec = yaml.safe_load((initialised / "specs" / "example-churn.yaml").read_text())
    artifact = (initialised / spec["spec"]["model"]["uri"]).read_bytes()
    assert spec["spec"]["model"]["sha256"] == hashlib.sha256(artifact).hexdigest()


def test_gitops_comes_from_origin_without_credentials(initialised: Path) -> None:
    text = (initialised / "specs" / "modelops.yaml").read_text()
    project = Project.model_validate(yaml.safe_load(text))
    assert project.gitops.repoURL == "https://github.com/acme/shop-models.git"
    assert "s3cret" not in text and "ci-bot" not in text
    assert project.metadata.name == "shop-models"
    assert [e.name for e in project.environments] == ["staging", "production"]
    assert {p.name for p in project.policies} >= {"production-high-availability"}


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ("git@github.com:acme/models.git", "git@github.com:acme/models.git"),
        ("ssh://git@example.com:2222/acme/models.git", "ssh://git@example.com:2222/acme/models.git"),
        ("https://github.com/acme/models.git\nextra: 1", None),
        ('https://github.com/a"b', None),
    ],
)
def test_origin_url_is_kept_only_when_argo_cd_could_clone_it(
    repo: Path, remote: str, expected: str | None
) -> None:
    _git(repo, "remote", "add", "origin", remote)
    assert origin_url(repo) == expected


def test_without_origin_the_placeholder_is_flagged(repo: Path, cli: Callable[..., Result]) -> None:
    assert cli("init", repo, "--minimal").code == 0
    text = (repo / "specs" / "modelops.yaml").read_text()
    assert PLACEHOLDER_REPO_URL in text and "no `origin` remote was found" in text


def test_minimal_writes_the_project_file_only(repo: Path, cli: Callable[..., Result]) -> None:
    result = cli("init", repo, "--minimal")
    assert result.code == 0
    files = [
        p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file() and ".git/" not in p.as_posix()
    ]
    assert files == ["specs/modelops.yaml"]
    Project.model_validate(yaml.safe_load((repo / "specs" / "modelops.yaml").read_text()))


def test_init_refuses_to_overwrite_and_names_the_file(initialised: Path, cli: Callable[..., Result]) -> None:
    project = initialised / "specs" / "modelops.yaml"
    project.write_text("# mine\n")
    (initialised / "specs" / "example-churn.yaml").unlink()
    again = cli("init")
    assert again.code == 2
    assert "specs/modelops.yaml already exists" in again.err and "--force" in again.err
    assert project.read_text() == "# mine\n"
    assert not (initialised / "specs" / "example-churn.yaml").exists()  # nothing written at all
    forced = cli("init", "--force")
    assert forced.code == 0
    assert project.read_text() != "# mine\n"
    assert cli("validate").code == 0


def test_init_appends_to_an_existing_gitignore(repo: Path, cli: Callable[..., Result]) -> None:
    (repo / ".gitignore").write_text("node_modules/\n.venv/")
    assert cli("init", repo).code == 0
    lines = (repo / ".gitignore").read_text().splitlines()
    assert lines[:2] == ["node_modules/", ".venv/"]
    assert ".modelops-cache/" in lines and lines.count(".venv/") == 1


def test_init_does_not_write_through_a_symbolic_link(
    repo: Path, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    outside = tmp_path / "outside"
    outside.write_text("keep\n")
    (repo / ".gitignore").symlink_to(outside)
    result = cli("init", repo)
    assert result.code == 2 and "symbolic link" in result.err
    assert outside.read_text() == "keep\n"


@pytest.mark.parametrize(
    "linked", ["specs", ".github/workflows/modelops-pr.yml"], ids=["a directory", "a dangling file"]
)
def test_init_refuses_a_link_on_the_way_before_writing_anything(
    repo: Path, tmp_path: Path, cli: Callable[..., Result], linked: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    link = repo / linked
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside if linked == "specs" else outside / "nowhere.yml")
    before = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*"))
    result = cli("init", repo, *(["--minimal"] if linked == "specs" else []))
    assert result.code == 2 and f"{link} is a symbolic link" in result.err, result.err
    assert "nothing was written" in result.err
    assert list(outside.iterdir()) == []
    assert sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*")) == before


def _properties(schema: dict[str, Any]) -> Iterator[str]:
    """Every property name in a JSON Schema, nested definitions included."""
    for node in [schema, *schema.get("$defs", {}).values()]:
        yield from node.get("properties", {})


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_new_spec_is_valid_at_once_and_lists_every_field(
    initialised: Path, cli: Callable[..., Result], task: str
) -> None:
    result = cli("new", "fraud-score", "--task", task)
    assert result.code == 0, result.err
    text = (initialised / "specs" / "fraud-score.yaml").read_text()
    checked = cli("validate", "--strict")
    assert checked.code == 0, checked.out + checked.err
    schema = json.loads(cli("schema").out)
    missing = {name for name in _properties(schema) if not re.search(rf"\b{re.escape(name)}:", text)}
    assert not missing, f"fields not in the skeleton: {sorted(missing)}"
    assert yaml.safe_load(text)["spec"]["model"]["task"] == task


def test_new_refuses_to_overwrite_and_rejects_bad_names(
    initialised: Path, cli: Callable[..., Result]
) -> None:
    assert cli("new", "fraud-score", "--task", "regression").code == 0
    again = cli("new", "fraud-score", "--task", "regression")
    assert again.code == 2 and "specs/fraud-score.yaml already exists" in again.err
    bad = cli("new", "Fraud_Score", "--task", "regression")
    assert bad.code == 2 and "DNS-1123" in bad.err and "Traceback" not in bad.err


def test_packaged_schemas_are_fresh(cli: Callable[..., Result]) -> None:
    """`make schema` writes the package copy too; init copies it into new projects."""
    schemas = REPO / "compiler" / "spec" / "schemas"
    assert (schemas / "model.json").read_text() == cli("schema").out
    assert (schemas / "project.json").read_text() == cli("schema", "--kind", "Project").out


def _workflows(root: Path) -> list[Path]:
    return sorted((root / ".github" / "workflows").glob("*.yml"))


def test_scaffolded_workflows_pass_the_github_schema_and_zizmor(initialised: Path) -> None:
    workflows = _workflows(initialised)
    assert [p.name for p in workflows] == ["modelops-main.yml", "modelops-pr.yml"]
    for workflow in workflows:
        result = subprocess.run(
            [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(workflow)],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run(
        [tool("zizmor"), "--offline", "--min-severity", "medium", str(initialised / ".github" / "workflows")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_scaffolded_workflows_use_the_action_with_commands_the_cli_accepts(initialised: Path) -> None:
    action_inputs: set[str] | None = None
    if (REPO / "action.yml").is_file():
        action_inputs = set(yaml.safe_load((REPO / "action.yml").read_text())["inputs"])
    commands: set[str] = set()
    for workflow in _workflows(initialised):
        for job in yaml.safe_load(workflow.read_text())["jobs"].values():
            for step in job["steps"]:
                uses = step.get("uses", "")
                if uses.startswith("actions/"):
                    continue
                if uses:
                    assert re.fullmatch(r"[\w.-]+/modelops@v\d+\.\d+\.\d+", uses), uses
                    commands.add(step["with"]["command"])
                    if action_inputs is not None:
                        assert set(step["with"]) <= action_inputs, (workflow.name, step["with"])
                for line in step.get("run", "").splitlines():
                    match = re.search(r"\bmodelops (\w[^>|;']*)", line)
                    if match:
                        words = ["REF" if "$" in w else w for w in shlex.split(match.group(1))]
                        build_parser().parse_args(words)  # exits (fails the test) if rejected
    assert commands == {"validate", "evaluate", "check", "diff", "apply"}


def test_pre_commit_config_names_the_hooks_this_repository_defines(initialised: Path) -> None:
    config = yaml.safe_load((initialised / ".pre-commit-config.yaml").read_text())
    hooks = {h["id"] for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    (entry,) = config["repos"]
    assert {h["id"] for h in entry["hooks"]} == hooks == {"modelops-validate", "modelops-check"}
