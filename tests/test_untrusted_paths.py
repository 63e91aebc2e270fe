"""Paths a pull request controls: spec files that are links or FIFOs, datasets and artifact
URIs. None may make modelops read outside the project, hang, crash, or print a file that is
not a spec (issue 11, items 4 and 5)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO, Result, spec_text

SECRET = "MODELOPS_TEST_SECRET_4f9a1c"
TIMEOUT = 120  # seconds; a FIFO opened for reading would otherwise block forever


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    """`modelops ARGS...` in a child process, so a hang is a timeout, not a stuck suite."""
    process = subprocess.run(
        [sys.executable, "-m", "compiler", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
    )
    return Result(process.returncode, process.stdout, process.stderr)


def outside(tmp_path: Path, name: str, text: str) -> Path:
    """A file beside the project, never inside it: what a link in a pull request points at."""
    path = tmp_path / "outside" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def no_secret(result: Result) -> None:
    assert SECRET not in result.out + result.err
    assert "Traceback" not in result.err
    assert result.code != 3


def line_of(path: Path, key: str) -> int:
    """The 1-based line where `key:` is written in a spec."""
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if line.strip().startswith(f"{key}:"))


# --- spec discovery: links and special files in specs/ (item 5) --------------------------------


def test_symlink_loop_is_a_located_error(cli: Callable[..., Result], project: Path) -> None:
    (project / "specs" / "loop.yaml").symlink_to("loop.yaml")
    (project / "specs" / "a.yaml").symlink_to("b.yaml")
    (project / "specs" / "b.yaml").symlink_to("a.yaml")
    for args in (("validate", project / "specs"), ("validate", project / "specs" / "loop.yaml")):
        result = cli(*args)
        assert result.code == 1, result.err
        assert "specs/loop.yaml:1:1: error: symbolic link loop" in result.out
    assert "specs/a.yaml:1:1: error: symbolic link loop" in cli("validate", project / "specs").out


def test_dangling_link_is_a_located_error(cli: Callable[..., Result], project: Path) -> None:
    (project / "specs" / "gone.yaml").symlink_to("nowhere.yaml")
    result = cli("validate", project / "specs")
    assert result.code == 1
    assert "specs/gone.yaml:1:1: error: symbolic link to a file that does not exist" in result.out


@pytest.mark.parametrize("command", ["validate", "compile"])
def test_fifo_named_like_a_spec_is_skipped_with_a_warning(project: Path, command: str) -> None:
    """Before: validate waited forever for a writer."""
    os.mkfifo(project / "specs" / "x.yaml")
    result = run(command, project / "specs")
    assert result.code == 0, result.out + result.err
    assert "specs/x.yaml:1:1: warning: skipped: not a regular file (a FIFO)" in result.out


def test_fifo_named_explicitly_is_skipped(project: Path) -> None:
    os.mkfifo(project / "specs" / "x.yaml")
    result = run("validate", project / "specs" / "x.yaml", "--strict")
    assert result.code == 1
    assert "specs/x.yaml:1:1: warning: skipped: not a regular file (a FIFO)" in result.out


def test_load_file_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    """The belt under discovery's braces: a FIFO that appears after the scan is refused too."""
    os.mkfifo(tmp_path / "late.yaml")
    code = (
        "import sys; from pathlib import Path\n"
        "from compiler.diagnostics import DiagnosticError\n"
        "from compiler.spec.yamlsource import load_file\n"
        "try:\n    load_file(Path(sys.argv[1]), 'late.yaml')\n"
        "except DiagnosticError as err:\n    print(err.diagnostics[0].message)\n"
    )
    process = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "late.yaml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert "not a regular file" in process.stdout, process.stderr


def test_link_to_a_spec_outside_the_project_is_refused(cli: Callable[..., Result], project: Path) -> None:
    """Before: compiled silently, the outside path in modelops.dev/source."""
    target = outside(project.parent, "stray.yaml", spec_text("stray-model"))
    (project / "specs" / "stray.yaml").symlink_to(target)
    for command in ("validate", "compile"):
        result = cli(command, project / "specs")
        assert result.code == 1, result.out
        assert "specs/stray.yaml:1:1: error: symbolic link to a file outside the project" in result.out
        assert str(target) not in result.out
    assert not (project / "generated").exists()


def test_link_to_a_secret_is_refused_unread(cli: Callable[..., Result], project: Path) -> None:
    """Before: the secret's lines came back in 'unknown field' errors (a link to /etc/shadow)."""
    target = outside(project.parent, "shadow", f"{SECRET}: $6$salt$hash\n")
    (project / "specs" / "shadow.yaml").symlink_to(target)
    for args in (("validate", project / "specs"), ("validate", project / "specs" / "shadow.yaml")):
        result = cli(*args)
        assert result.code == 1
        assert "shadow.yaml:1:1: error: symbolic link to a file outside the project" in result.out
        no_secret(result)


def test_incremental_compile_refuses_a_new_outside_link(cli: Callable[..., Result], project: Path) -> None:
    """The spec cache must not let a link in: a warm compile checks discovery as a cold one does."""
    assert cli("compile", project / "specs").code == 0
    target = outside(project.parent, "stray.yaml", spec_text("stray-model"))
    (project / "specs" / "stray.yaml").symlink_to(target)
    result = cli("compile", project / "specs")
    assert result.code == 1
    assert "symbolic link to a file outside the project" in result.out
    assert not list((project / "generated").rglob("stray-model"))


def test_links_inside_the_project_are_followed(cli: Callable[..., Result], project: Path) -> None:
    shared = project / "shared" / "model.yaml"
    shared.parent.mkdir()
    shared.write_text(spec_text("shared-model"))
    (project / "specs" / "shared.yaml").symlink_to("../shared/model.yaml")
    result = cli("compile", project / "specs")
    assert result.code == 0, result.out
    deployment = project / "generated/production/ml-production/shared-model/deployment.yaml"
    assert "modelops.dev/source: shared/model.yaml" in deployment.read_text()


def test_directory_links_are_not_followed(cli: Callable[..., Result], project: Path) -> None:
    target = outside(project.parent, "secret.yaml", f"{SECRET}: 1\n")
    (project / "specs" / "elsewhere").symlink_to(target.parent)
    result = cli("validate", project / "specs")
    assert result.code == 0, result.out
    no_secret(result)


def test_project_file_linking_outside_is_refused(cli: Callable[..., Result], project: Path) -> None:
    project_file = project / "specs" / "modelops.yaml"
    target = outside(project.parent, "modelops.yaml", project_file.read_text() + f"{SECRET}: 1\n")
    project_file.unlink()
    project_file.symlink_to(target)
    for args in (("validate", project / "specs"), ("validate", "--project", project_file)):
        result = cli(*args)
        assert result.code == 2
        assert "specs/modelops.yaml: the project file is a symbolic link to a file outside" in result.err
        no_secret(result)


# --- evaluation.dataset and model URIs in the spec (item 4) ------------------------------------


def _set(project: Path, key: str, value: str) -> Path:
    spec = project / "specs" / "credit-default.yaml"
    lines = spec.read_text().splitlines()
    number = line_of(spec, key)
    indent = lines[number - 1][: len(lines[number - 1]) - len(lines[number - 1].lstrip())]
    lines[number - 1] = f"{indent}{key}: {value}"
    spec.write_text("\n".join(lines) + "\n")
    return spec


def _refused(cli: Callable[..., Result], project: Path, key: str, value: str) -> tuple[str, str]:
    """Set `key` of the spec to `value` and validate, which must fail: the output, and where
    the value stands (file:line:column), where the error must point."""
    spec = _set(project, key, value)
    result = cli("validate", project / "specs")
    assert result.code == 1, result.out
    line = line_of(spec, key)
    column = spec.read_text().splitlines()[line - 1].index(":") + 3
    return result.out, f"credit-default.yaml:{line}:{column}"


# Per field (and where it sits in the spec): values that must be refused, and what the error says.
REFUSED_PATHS = {
    "spec.evaluation.dataset": (
        ("/etc/passwd", "must be a path relative to the repository root"),
        ("/proc/self/environ", "must be a path relative to the repository root"),
        ("../outside.csv", "must not leave the repository ('..')"),
        ("data/../../outside.csv", "must not leave the repository ('..')"),
        ("pvc://claim/holdout.csv", "is a URI; the holdout set must be a file committed"),
        ("https://example.com/holdout.csv", "is a URI; the holdout set must be a file committed"),
        ("s3://bucket/holdout.csv", "is a URI; the holdout set must be a file committed"),
        ("C:/data/holdout.csv", "must be a path relative to the repository root"),
        (".git/config", "hidden file or directory"),
        ('"data/holdout\\0.csv"', "contains a control character"),
    ),
    "spec.model.uri": (
        ("pvc://../../etc/passwd", "'..' is not a PersistentVolumeClaim name"),
        ("pvc:///etc/passwd", "'' is not a PersistentVolumeClaim name"),
        ("pvc://Models_Claim/model.skops", "'Models_Claim' is not a PersistentVolumeClaim name"),
        ("pvc://models", "names no file in the claim"),
        ("pvc://models/a/../../../etc/passwd", "must not leave the claim ('..')"),
        ('"models/model\\0.skops"', "contains a control character"),
    ),
}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [(field, value, message) for field, cases in REFUSED_PATHS.items() for value, message in cases],
)
def test_validate_refuses_paths_outside_the_project(
    cli: Callable[..., Result], project: Path, field: str, value: str, message: str
) -> None:
    """Holdout sets outside the repository and PersistentVolumeClaim URIs that escape the claim."""
    out, at = _refused(cli, project, field.rsplit(".", 1)[1], value)
    assert f"{at}: error: {field}:" in out
    assert message in out


def test_a_pvc_uri_naming_a_claim_and_a_file_is_valid(cli: Callable[..., Result], project: Path) -> None:
    _set(project, "uri", "pvc://models.risk-team/credit-default/1.4.0/model.skops")
    assert cli("validate", project / "specs").code == 0


def test_evaluate_never_reads_the_process_environment(project: Path) -> None:
    """Before: `dataset: /proc/self/environ` passed validate, and evaluate printed the CI
    job's environment in its "no column" error."""
    _set(project, "dataset", "/proc/self/environ")
    result = run("evaluate", project / "specs", "--no-write", env={"CI_TOKEN": SECRET})
    assert result.code == 1
    assert "must be a path relative to the repository root" in result.out
    no_secret(result)


def _evaluate_refused(cli: Callable[..., Result], project: Path) -> tuple[str, str]:
    """What a refused `evaluate` printed (never the secret), and the place of the dataset field."""
    result = cli("evaluate", project / "specs", "--no-write")
    assert result.code == 1
    no_secret(result)
    return result.out, f"credit-default.yaml:{line_of(project / 'specs/credit-default.yaml', 'dataset')}:"


def test_dataset_link_leaving_the_project_is_refused(cli: Callable[..., Result], project: Path) -> None:
    holdout = project / "data/credit-default/holdout.csv"
    holdout.unlink()
    holdout.symlink_to(outside(project.parent, "environ.csv", f"{SECRET}=1,x\n1,2\n"))
    out, at = _evaluate_refused(cli, project)
    assert at in out
    assert "is a symbolic link that leads outside the project" in out


def test_missing_target_column_does_not_echo_the_header(cli: Callable[..., Result], project: Path) -> None:
    """The error names the column the spec asked for and counts the others; it points at the
    dataset field, not at the model's uri."""
    (project / "data/credit-default/holdout.csv").write_text(f"{SECRET},income\n1,2\n")
    out, at = _evaluate_refused(cli, project)
    assert f"{at}14: error: credit-default:" in out
    assert "no column 'default' (the evaluation target) among its 2 columns" in out


def test_dataset_fifo_does_not_hang_evaluate(project: Path) -> None:
    holdout = project / "data/credit-default/holdout.csv"
    holdout.unlink()
    os.mkfifo(holdout)
    result = run("evaluate", project / "specs", "--no-write")
    assert result.code == 1
    assert "dataset data/credit-default/holdout.csv is not a regular file" in result.out


def test_oversized_dataset_is_refused_unread(cli: Callable[..., Result], project: Path) -> None:
    holdout = project / "data/credit-default/holdout.csv"
    with holdout.open("r+b") as handle:
        handle.truncate(33 * 1024 * 1024)  # sparse: refused by its size, never read
    result = cli("evaluate", project / "specs", "--no-write")
    assert result.code == 1
    assert "over the limit of 33554432" in result.out


def test_malformed_csv_is_a_located_error(cli: Callable[..., Result], project: Path) -> None:
    """Before: csv.Error escaped as an internal error (exit 3)."""
    holdout = project / "data/credit-default/holdout.csv"
    holdout.write_text(holdout.read_text() + "1," + "9" * 200_000 + "\n")
    result = cli("evaluate", project / "specs", "--no-write")
    assert result.code == 1
    assert "not a valid CSV file (field larger than field limit" in result.out
    assert "9" * 100 not in result.out


def test_artifact_link_leaving_the_project_is_refused(cli: Callable[..., Result], project: Path) -> None:
    """Before: a committed link to any file on the CI machine was read as the artifact."""
    artifact = project / "models/credit-default/1.4.0/model.skops"
    moved = project.parent / "outside" / "model.skops"
    moved.parent.mkdir()
    shutil.move(artifact, moved)
    artifact.symlink_to(moved)
    result = cli("evaluate", project / "specs", "--no-write")
    assert result.code == 1
    spec = project / "specs/credit-default.yaml"
    assert f"credit-default.yaml:{line_of(spec, 'uri')}:10: error: credit-default: artifact" in result.out
    assert "is a symbolic link that leads outside the project" in result.out
