"""CI definitions: valid, secure by zizmor's standards, and in step with the CLI they call."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from compiler.cli.main import build_parser
from tests.conftest import REPO, Result

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
JENKINSFILE = REPO / "Jenkinsfile"


def tool(name: str) -> str:
    found = shutil.which(name, path=str(REPO / ".venv" / "bin")) or shutil.which(name)
    assert found, f"{name} comes with the dev dependencies"
    return found


def test_there_are_review_and_delivery_workflows() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "pr.yml", "main.yml"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_the_github_schema(workflow: Path) -> None:
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(workflow)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_of_medium_severity_or_above() -> None:
    result = subprocess.run(
        [tool("zizmor"), "--offline", "--min-severity", "medium", str(REPO / ".github" / "workflows")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actions_are_pinned_by_commit() -> None:
    for workflow in WORKFLOWS:
        for uses in re.findall(r"uses:\s*(\S+)", workflow.read_text()):
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", uses), f"{workflow.name}: {uses}"


def _command_lines() -> list[tuple[str, str]]:
    """Every `modelops ...` invocation in the workflows and the Jenkinsfile."""
    found = []
    sources = [
        (p.name, step.get("run", ""))
        for p in WORKFLOWS
        for job in yaml.safe_load(p.read_text())["jobs"].values()
        for step in job["steps"]
    ]
    sources.append((JENKINSFILE.name, JENKINSFILE.read_text()))
    for name, text in sources:
        for line in text.splitlines():
            match = re.search(r"(?:\.venv/bin/)?modelops (\w[^>|;']*)", line)
            if match and "modelops-" not in match.group(0):
                found.append((name, match.group(1).strip()))
    return found


def test_every_cli_invocation_in_ci_is_accepted(cli: Callable[..., Result]) -> None:
    lines = _command_lines()
    assert {cmd.split()[0] for _, cmd in lines} >= {"validate", "evaluate", "compile", "diff"}
    for source, command in lines:
        words = [w for w in shlex.split(command.replace("$flags", "--allow-breaking")) if w]
        words = ["REF" if "$" in w else w for w in words]
        subcommand = words[0]
        help_text = cli(subcommand, "--help")
        assert help_text.code == 0, (source, command)
        for flag in (w.split("=")[0] for w in words if w.startswith("--")):
            assert flag in help_text.out, (
                f"{source}: {command}: {flag} is not a flag of `modelops {subcommand}`"
            )
        try:
            build_parser().parse_args(words)
        except SystemExit as exit_:
            pytest.fail(f"{source}: `modelops {command}` is rejected by the CLI ({exit_.code})")
