"""`modelops completion bash` is sourced in a real bash, whose completion function is then driven
the way bash drives it on TAB (COMP_WORDS, COMP_CWORD)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from compiler.cli.main import build_parser
from tests.conftest import Result

BASH = shutil.which("bash")


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("completion") / "modelops.bash"
    with path.open("w") as out:
        done = subprocess.run(
            [sys.executable, "-m", "compiler", "completion", "bash"], stdout=out, check=False
        )
    assert done.returncode == 0
    return path


def complete(script: Path, line: str, cwd: Path | None = None) -> list[str]:
    """What bash offers after `line` (a trailing space starts a new, empty word)."""
    assert BASH, "bash runs the completion"
    words = shlex.split(line) + ([""] if line.endswith(" ") else [])
    program = (
        f"source {shlex.quote(str(script))}\n"
        f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        f"COMP_LINE={shlex.quote(line)}\nCOMP_POINT=${{#COMP_LINE}}\n"
        'func=$(complete -p modelops | sed -E "s/.* -F ([^ ]+) .*/\\1/")\n'
        '"$func" modelops "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"\n'
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        [BASH, "--norc", "-c", program], capture_output=True, text=True, cwd=cwd, check=False
    )
    assert done.returncode == 0, done.stderr
    return [w.strip() for w in done.stdout.splitlines() if w.strip()]


def test_subcommands_complete(script: Path) -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert commands is not None
    assert set(complete(script, "modelops ")) == set(commands)
    assert set(complete(script, "modelops co")) == {"compile", "completion"}
    assert complete(script, "modelops ev") == ["evaluate"]


def test_options_and_their_choices_complete(script: Path) -> None:
    assert complete(script, "modelops compile --ch") == ["--check"]
    assert set(complete(script, "modelops diff --format ")) == {"text", "json", "markdown"}
    assert set(complete(script, "modelops completion ")) == {"bash", "zsh"}


def test_spec_paths_complete_file_names(script: Path, tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "credit-default.yaml").write_text("")
    assert complete(script, "modelops validate sp", cwd=tmp_path) == ["specs"]
    assert complete(script, "modelops validate specs/cr", cwd=tmp_path) == ["specs/credit-default.yaml"]


def test_zsh_script_names_every_subcommand(cli: Callable[..., Result]) -> None:
    result = cli("completion", "zsh")
    assert result.code == 0 and result.out.startswith("#compdef modelops")
    for command in ("validate", "compile", "diff", "apply", "evaluate", "completion"):
        assert f"\n    {command}:" in result.out
    zsh = shutil.which("zsh")
    if zsh:  # not installed everywhere; when it is, the script must at least parse
        assert subprocess.run([zsh, "-n"], input=result.out, text=True, check=False).returncode == 0
