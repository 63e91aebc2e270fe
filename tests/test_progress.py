"""Progress on stderr for a person at a terminal (a real pseudo-terminal here), and never in a
pipe, a CI log or a machine format."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import git
import pytest

from tests.conftest import REPO

CLEAR = "\r\x1b[K"


def run(args: list[str], cwd: Path, *, terminal: bool, **env: str) -> tuple[int, str, str]:
    """Run modelops with stderr on a pseudo-terminal (or a pipe); return code, stdout, stderr."""
    environ = {k: v for k, v in os.environ.items() if k not in ("CI", "GITHUB_ACTIONS", "NO_COLOR")}
    environ.update({"TERM": "xterm", "PYTHONPATH": str(REPO), **env})
    command = [sys.executable, "-m", "compiler", *args]
    if not terminal:
        done = subprocess.run(command, cwd=cwd, env=environ, capture_output=True, text=True, timeout=300)
        return done.returncode, done.stdout, done.stderr
    controller, terminal_end = pty.openpty()
    with subprocess.Popen(
        command, cwd=cwd, env=environ, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=terminal_end
    ) as process:
        os.close(terminal_end)
        seen = bytearray()
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: every process holding the terminal has closed it
                break
            if not chunk:
                break
            seen += chunk
        assert process.stdout is not None
        out = process.stdout.read().decode()
        code = process.wait(timeout=300)
    os.close(controller)
    return code, out, seen.decode()


def test_compile_shows_its_stages_on_a_terminal(project: Path, tmp_path: Path) -> None:
    code, out, err = run(["compile", "specs", "--out", str(tmp_path / "out")], project, terminal=True)
    assert code == 0, err
    assert f"{CLEAR}compile: checking specs" in err and f"{CLEAR}compile: rendering and writing" in err
    assert err.endswith(CLEAR), "the status line is erased when the work is done"
    assert "\r" not in out and "compiled 4 model environments" in out


@pytest.mark.parametrize(
    ("why", "extra", "terminal", "env"),
    [
        ("a pipe", [], False, {}),
        ("CI", [], True, {"CI": "true"}),
        ("--format json", ["--format", "json"], True, {}),
        ("--format github", ["--format", "github"], True, {}),
        ("a dumb terminal", [], True, {"TERM": "dumb"}),
    ],
)
def test_no_progress_where_nobody_watches(
    project: Path, tmp_path: Path, why: str, extra: list[str], terminal: bool, env: dict[str, str]
) -> None:
    code, _, err = run(
        ["compile", "specs", "--out", str(tmp_path / "out"), *extra], project, terminal=terminal, **env
    )
    assert code == 0, err
    assert "compile:" not in err and "\x1b" not in err, why


def test_evaluate_counts_the_models(project: Path) -> None:
    code, out, err = run(["evaluate", "specs", "--no-write"], project, terminal=True)
    assert code == 0, err
    assert "evaluate: credit-default (production) [1/4]" in err and "[4/4]" in err
    assert "\r" not in out and "gates passed" in out
    code, _, err = run(["evaluate", "specs", "--no-write"], project, terminal=False)
    assert code == 0 and "evaluate:" not in err


def test_diff_against_a_ref_shows_each_side(project: Path) -> None:
    repo = git.Repo.init(project, initial_branch="main")
    repo.git.add(A=True)
    author = git.Actor("Alice Example", "alice@example.com")
    repo.index.commit("Add the models", author=author, committer=author)
    code, out, err = run(["diff", "specs", "--base", "HEAD"], project, terminal=True)
    assert code == 0, err
    assert "diff: compiling the base (HEAD) [1/3]" in err
    assert "diff: compiling the head (working tree) [2/3]" in err and "diff: comparing [3/3]" in err
    assert "no change" in out and "\r" not in out


@pytest.mark.cluster
def test_apply_wait_counts_ready_deployments(project: Path, tmp_path: Path) -> None:
    from tests.testenv import controlplane

    config = project / "specs" / "modelops.yaml"
    config.write_text(config.read_text().replace("ml-staging", "progress-staging"))
    with controlplane.running(tmp_path / "plane") as plane:
        args = ["apply", "specs", "--env", "staging", "--context", "testenv"]
        args += ["--kubeconfig", str(plane.kubeconfig), "--wait", "--timeout", "1"]
        code, _, err = run(args, project, terminal=True)
        assert code == 1, "no controller runs the Deployments: the wait times out"
        assert f"{CLEAR}apply: staging: waiting for rollouts, ready [0/2]" in err
        code, _, err = run(args, project, terminal=False)
        assert code == 1 and "apply: staging: waiting" not in err
