"""CI definitions: valid, secure by zizmor's standards, and in step with the CLI they call."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import git
import pytest
import yaml

from compiler.cli.main import build_parser
from tests.conftest import REPO, Result

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
JENKINSFILE = REPO / "Jenkinsfile"
ACTION = REPO / "action.yml"


def tool(name: str) -> str:
    found = shutil.which(name, path=str(REPO / ".venv" / "bin")) or shutil.which(name)
    assert found, f"{name} comes with the dev dependencies"
    return found


def test_there_are_review_and_delivery_workflows() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "pr.yml", "main.yml"}


def _assert_matches(schema: str, path: Path) -> None:
    """check-jsonschema finds `path` valid against its builtin (SchemaStore) `schema`."""
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", schema, str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_the_github_schema(workflow: Path) -> None:
    _assert_matches("vendor.github-workflows", workflow)


def test_action_matches_the_github_schema() -> None:
    _assert_matches("vendor.github-actions", ACTION)


def test_zizmor_finds_nothing_of_medium_severity_or_above() -> None:
    result = subprocess.run(
        [
            tool("zizmor"),
            "--offline",
            "--min-severity",
            "medium",
            str(REPO / ".github" / "workflows"),
            str(ACTION),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actions_are_pinned_by_commit() -> None:
    for source, step in _steps():
        uses = step.get("uses")
        if uses is None or uses == "./":  # a run step, or this repository's action at the commit under test
            continue
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", uses), f"{source}: {uses}"


def _action() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(ACTION.read_text())
    return loaded


def _steps() -> list[tuple[str, dict[str, Any]]]:
    """Every step of every workflow, and of the action."""
    steps = [
        (p.name, step)
        for p in WORKFLOWS
        for job in yaml.safe_load(p.read_text())["jobs"].values()
        for step in job["steps"]
    ]
    return steps + [(ACTION.name, step) for step in _action()["runs"]["steps"]]


def _value(name: str, env: dict[str, str]) -> str:
    """A shell variable as the step sets it: an action input's default, else a stand-in ref."""
    inputs = _action()["inputs"]
    found = re.fullmatch(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", env.get(name, ""))
    return str(inputs[found.group(1)]["default"] or "REF") if found else "REF"


def _arrays(script: str, env: dict[str, str]) -> dict[str, list[str]]:
    """Bash arrays the script fills (`a=(...)`, `a+=(...)`, `read -ra a <<< "$V"`): every word
    any branch can put in them, so that a command line is checked with all its flags."""
    arrays: dict[str, list[str]] = {}
    for name, words in re.findall(r"(\w+)\+?=\(([^)]*)\)", script):
        arrays.setdefault(name, []).extend(_words(words, env, {}))
    for name, variable in re.findall(r"read -ra (\w+) <<< \"\$(\w+)\"", script):
        arrays[name] = _value(variable, env).split()
    return arrays


def _words(command: str, env: dict[str, str], arrays: dict[str, list[str]]) -> list[str]:
    words: list[str] = []
    for word in shlex.split(command):
        array = re.fullmatch(r"\$\{(\w+)\[@\]\}", word)
        variable = re.fullmatch(r"\$\{?(\w+)\}?", word)
        if array:
            words += arrays[array.group(1)]
        elif variable:
            words.append(_value(variable.group(1), env))
        elif "$" in word:
            words.append("REF")
        elif word:
            words.append(word)
    return words


def _command_lines() -> list[tuple[str, list[str]]]:
    """Every `modelops ...` invocation in the workflows, the action and the Jenkinsfile, as words."""
    sources = [(name, step.get("run", ""), step.get("env", {})) for name, step in _steps()]
    sources.append((JENKINSFILE.name, JENKINSFILE.read_text(), {}))
    found = []
    for name, text, env in sources:
        arrays = _arrays(text, env)
        for line in text.splitlines():
            if line.lstrip().startswith(("#", "//")):
                continue  # a comment in a script or the Jenkinsfile
            match = re.search(r"(?:\.venv/bin/)?modelops (\w[^>|;']*)", line)
            if match and "modelops-" not in match.group(0):
                found.append((name, _words(match.group(1), env, arrays)))
    return found


def test_every_cli_invocation_in_ci_is_accepted(cli: Callable[..., Result]) -> None:
    lines = _command_lines()
    assert {words[0] for _, words in lines} >= {"validate", "evaluate", "compile", "diff", "apply"}
    action_lines = [words for source, words in lines if source == ACTION.name]
    assert {words[0] for words in action_lines} == {"validate", "evaluate", "compile", "diff", "apply"}
    for source, words in lines:
        command = " ".join(words)
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


def _action_script() -> tuple[str, dict[str, str]]:
    step = next(step for step in _action()["runs"]["steps"] if step.get("id") == "run")
    return step["run"], step["env"]


def _commands_the_action_takes() -> set[str]:
    script, _ = _action_script()
    return set(re.findall(r"^\s*(\w+)\)$", script, re.MULTILINE))


def test_workflows_use_the_action_with_its_inputs() -> None:
    assert _commands_the_action_takes() == {"validate", "check", "diff", "evaluate", "apply"}
    inputs = set(_action()["inputs"])
    used = [(name, step) for name, step in _steps() if step.get("uses") == "./"]
    assert {step["with"]["command"] for _, step in used} == {"validate", "check", "diff", "evaluate", "apply"}
    for name, step in used:
        assert set(step["with"]) <= inputs, f"{name}: {step['name']}: {set(step['with']) - inputs}"
        assert step["with"]["command"] in _commands_the_action_takes()


class ActionRun:
    """The action's main step run by a real bash as the runner runs it, with the modelops of
    this checkout standing in for the one the install step puts in $RUNNER_TEMP."""

    def __init__(self, workdir: Path, runner_temp: Path) -> None:
        self.workdir, self.temp = workdir, runner_temp
        (runner_temp / "modelops-venv" / "bin").mkdir(parents=True)
        (runner_temp / "modelops-venv" / "bin" / "modelops").symlink_to(tool("modelops"))

    def __call__(self, **inputs: str) -> tuple[int, dict[str, str], str]:
        script, env = _action_script()
        defaults = {name: str(spec.get("default", "")) for name, spec in _action()["inputs"].items()}
        given = {**defaults, **inputs}
        output, summary = self.temp / "output", self.temp / "summary"
        output.write_text("")
        summary.write_text("")
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_", "INPUT_"))}
        environ |= {
            "NO_COLOR": "1",
            "RUNNER_TEMP": str(self.temp),
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(summary),
        }
        for variable, expression in env.items():
            name = re.fullmatch(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", expression)
            assert name, expression
            environ[variable] = given[name.group(1)]
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=self.workdir,
            env=environ,
            capture_output=True,
            text=True,
        )
        outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
        return done.returncode, outputs, done.stdout + done.stderr + summary.read_text()


@pytest.fixture
def action(project: Path, tmp_path: Path) -> ActionRun:
    """The bundled project, compiled and committed, as a workflow would check it out."""
    subprocess.run([tool("modelops"), "compile", "specs"], cwd=project, check=True, capture_output=True)
    repo = git.Repo.init(project, initial_branch="main")
    repo.git.add(A=True)
    author = git.Actor("Alice Example", "alice@example.com")
    repo.index.commit("Add the models", author=author, committer=author)
    temp = tmp_path / "runner"
    temp.mkdir()
    return ActionRun(project, temp)


def test_the_action_runs_each_command(action: ActionRun) -> None:
    code, _, log = action(command="validate")
    assert code == 0, log
    code, _, log = action(command="check")
    assert code == 0, log
    code, _, log = action(command="evaluate")
    assert code == 0 and "::error" not in log, log
    spec = action.workdir / "specs" / "credit-default.yaml"
    spec.write_text(spec.read_text().replace("task: classification", "task: clasification"))
    code, _, log = action(command="validate")
    assert code == 1 and "::error file=specs/credit-default.yaml,line=" in log, log
    code, _, log = action(command="nonsense")
    assert code == 2 and "unknown command 'nonsense'" in log


def test_the_action_diff_sets_its_outputs_and_the_summary(action: ActionRun) -> None:
    code, outputs, log = action(command="diff", base="HEAD")
    assert code == 0, log
    assert outputs["changed"] == "false" and outputs["breaking"] == "false"
    assert Path(outputs["report"]).read_text().startswith("<!-- modelops-diff -->")
    spec = action.workdir / "specs" / "credit-default.yaml"
    spec.write_text(spec.read_text().replace("{min: 3, max: 20}", "{min: 4, max: 20}"))
    code, outputs, log = action(command="diff", base="HEAD")
    assert code == 0, log
    assert outputs == {"report": outputs["report"], "changed": "true", "breaking": "false"}
    assert "credit-default" in log  # the job summary has the report
    spec.write_text(spec.read_text().replace("    port: 8080\n", "    port: 8081\n"))
    code, outputs, log = action(command="diff", base="HEAD")
    assert code == 4 and outputs["breaking"] == "true", log
    code, outputs, log = action(command="diff", base="HEAD", **{"fail-on-breaking": "false"})
    assert code == 0 and outputs["breaking"] == "true", log
    code, outputs, log = action(command="diff", base="HEAD", **{"allow-breaking": "true"})
    assert code == 0 and outputs["breaking"] == "false" and outputs["changed"] == "true", log
    code, _, log = action(command="diff")
    assert code == 2 and "diff needs the base input" in log
