"""The output tree: links, other filesystems, foreign files and impossible --out targets.

Rules under test (README, "The generated tree"): --out itself may be a link, nothing inside the
tree is ever followed; writes are staged inside the tree so a link to another filesystem works,
and a transaction stuck beside such a link by an earlier version is finished; files modelops
did not write are left alone by compile, --full and --check alike; an --out that cannot be a
tree of its own is a usage error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from compiler.bundle.writer import read_tree
from tests.conftest import REPO, Result, spec_text

MODEL_DIR = "staging/ml-staging/credit-default"
STAGING = ".modelops-txn"  # inside the tree
LEGACY = ".generated.txn"  # beside the tree, where earlier versions staged


def compile_into(
    cli: Callable[..., Result], root: Path, *extra: str | Path, out: str = "generated"
) -> Result:
    return cli("compile", root / "specs", "--out", root / out, *extra)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


@pytest.fixture
def elsewhere(tmp_path: Path) -> Iterator[Path]:
    """An empty directory on another filesystem than tmp_path (a tmpfs, typically)."""
    for candidate in (Path("/dev/shm"), Path(tempfile.gettempdir()), Path.home()):
        usable = candidate.is_dir() and os.access(candidate, os.W_OK)
        if usable and candidate.stat().st_dev != tmp_path.stat().st_dev:
            directory = Path(tempfile.mkdtemp(prefix="modelops-test-", dir=candidate))
            yield directory
            shutil.rmtree(directory, ignore_errors=True)
            return
    pytest.skip("no second writable filesystem on this machine (tried /dev/shm, $TMPDIR, $HOME)")


# --- item 10: links inside the tree ------------------------------------------------------------


def test_no_compile_writes_through_a_linked_directory(
    cli: Callable[..., Result], project: Path, tmp_path: Path
) -> None:
    """A model directory replaced by a link to a directory outside: --full used to write its
    14 files there and exit 0. Now --full, --check and a compile that writes there refuse."""
    assert compile_into(cli, project).code == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    model = project / "generated" / MODEL_DIR
    shutil.rmtree(model)
    model.symlink_to(outside)
    edit(project / "specs" / "credit-default.yaml", "version: 1.4.0", "version: 1.5.0")
    for extra in (["--full"], ["--check"], []):
        result = compile_into(cli, project, *extra)
        assert result.code == 2, (extra, result)
        assert f"{model} is a symbolic link: modelops never follows a link" in result.err
        assert list(outside.iterdir()) == [], f"compile {extra} wrote outside the tree"
    assert model.is_symlink()


def test_a_linked_file_in_the_tree_is_refused_and_not_read(
    cli: Callable[..., Result], project: Path, tmp_path: Path
) -> None:
    assert compile_into(cli, project).code == 0
    secret = tmp_path / "secret.txt"
    secret.write_text("TOKEN=hunter2\n")
    deployment = project / "generated" / MODEL_DIR / "deployment.yaml"
    deployment.unlink()
    deployment.symlink_to(secret)
    for extra in (["--check"], ["--full"], ["--check", "--format", "json"]):
        result = compile_into(cli, project, *extra)
        assert result.code == 2 and f"{deployment} is a symbolic link" in result.err
        assert "hunter2" not in result.out + result.err
    assert secret.read_text() == "TOKEN=hunter2\n" and deployment.is_symlink()


def test_a_fifo_in_the_tree_is_refused_without_hanging(cli: Callable[..., Result], project: Path) -> None:
    assert compile_into(cli, project).code == 0
    fifo = project / "generated" / MODEL_DIR / "pipe.yaml"
    os.mkfifo(fifo)
    command = [sys.executable, "-m", "compiler", "compile", str(project / "specs"), "--check"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
    assert result.returncode == 2
    assert f"{fifo} is a FIFO: an output directory holds only directories and regular files" in result.stderr


def test_a_link_where_modelops_stages_cannot_redirect_writes(
    cli: Callable[..., Result], project: Path, tmp_path: Path
) -> None:
    """The staging area, inside the tree or where earlier versions put it beside the tree, is
    never followed when it is a link: nothing is staged (written) through it."""
    assert compile_into(cli, project).code == 0
    edit(project / "specs" / "credit-default.yaml", "version: 1.4.0", "version: 1.5.0")
    outside = tmp_path / "outside"
    outside.mkdir()
    for link in (project / LEGACY, project / "generated" / STAGING):
        link.symlink_to(outside)
        result = compile_into(cli, project)
        assert result.code == 2, result
        assert f"{link} is a symbolic link, where modelops stages its writes; remove it" in result.err
        assert list(outside.iterdir()) == []
        link.unlink()
    assert compile_into(cli, project).code == 0


def test_a_staged_link_is_not_moved_into_the_tree(
    cli: Callable[..., Result], project: Path, tmp_path: Path
) -> None:
    """A journal whose staged file is a link (to a secret, say) is refused, not replayed: the
    link would otherwise land in the tree, and the next sync would publish the secret."""
    assert compile_into(cli, project).code == 0
    secret = tmp_path / "secret.txt"
    secret.write_text("TOKEN=hunter2\n")
    staged = project / LEGACY / "files"
    staged.mkdir(parents=True)
    (staged / "0").symlink_to(secret)
    journal = {"writes": [[f"{MODEL_DIR}/service.yaml", "0"]], "removes": []}
    (project / LEGACY / "journal.json").write_text(json.dumps(journal))
    result = compile_into(cli, project)
    assert result.code == 2 and "the staged file 0 of an interrupted compile is a symbolic link" in result.err
    assert not (project / "generated" / MODEL_DIR / "service.yaml").is_symlink()


# --- item 11: --out linked to another filesystem ------------------------------------------------


def test_output_linked_to_another_filesystem(
    cli: Callable[..., Result], project: Path, elsewhere: Path
) -> None:
    """The first compile used to fail with "Invalid cross-device link" (staging was beside the
    link, on the link's filesystem); now every compile works and converges."""
    (project / "generated").symlink_to(elsewhere)
    first = compile_into(cli, project)
    assert first.code == 0, first.err
    assert (elsewhere / ".modelops-manifest.json").is_file()
    edit(project / "specs" / "credit-default.yaml", "version: 1.4.0", "version: 1.5.0")
    second = compile_into(cli, project)
    assert second.code == 0 and re.search(r"0 added, [1-9][0-9]* changed, 0 removed", second.out)
    assert compile_into(cli, project, "--check").code == 0
    assert compile_into(cli, project, "--full", out="expected").code == 0
    assert read_tree(project / "generated") == read_tree(project / "expected")
    assert not (project / LEGACY).exists() and not (elsewhere / STAGING).exists()


def test_a_transaction_stuck_across_filesystems_is_finished(
    cli: Callable[..., Result], project: Path, elsewhere: Path
) -> None:
    """The state an earlier version left (its journal committed in .generated.txn beside a link to
    another filesystem, every later compile failing until it was deleted by hand) is finished
    by the next compile: it copies across, then renames within the tree."""
    assert compile_into(cli, project).code == 0
    shutil.copytree(project / "generated", elsewhere, dirs_exist_ok=True)
    shutil.rmtree(project / "generated")
    (project / "generated").symlink_to(elsewhere)
    old = read_tree(project / "generated")
    edit(project / "specs" / "credit-default.yaml", "version: 1.4.0", "version: 1.5.0")
    assert compile_into(cli, project, "--full", out="expected").code == 0
    new = read_tree(project / "expected")
    writes = sorted(
        (p for p in new if old.get(p) != new[p]), key=lambda p: (p == ".modelops-manifest.json", p)
    )
    assert writes
    (project / LEGACY / "files").mkdir(parents=True)
    for number, path in enumerate(writes):
        (project / LEGACY / "files" / str(number)).write_bytes(new[path])
    journal = {"writes": [[path, str(n)] for n, path in enumerate(writes)], "removes": []}
    (project / LEGACY / "journal.json").write_text(json.dumps(journal))

    check = compile_into(cli, project, "--check")
    assert check.code == 2 and "stopped half-way through writing; run `modelops compile`" in check.err
    result = compile_into(cli, project)
    assert result.code == 0, result.err
    assert "(0 added, 0 changed, 0 removed)" in result.out  # the journal did it all
    assert read_tree(project / "generated") == new
    assert not (project / LEGACY).exists()
    assert compile_into(cli, project, "--check").code == 0


# --- item 12: foreign files ---------------------------------------------------------------------


def test_a_foreign_file_is_left_alone_by_compile_check_and_full(
    cli: Callable[..., Result], project: Path
) -> None:
    """generated/NOTES.md used to make --check fail forever (compile kept it, --check wanted it
    gone) until --full deleted it without a word. Now all three leave it and name it."""
    assert compile_into(cli, project).code == 0
    notes = project / "generated" / "NOTES.md"
    notes.write_text("hand-written notes\n")
    for extra in (["--check"], [], ["--full"], ["--check"]):
        result = compile_into(cli, project, *extra)
        assert result.code == 0, (extra, result)
        if extra:  # --check and --full read the tree, so they see it and say so
            assert "left alone (not written by modelops" in result.out and "generated/NOTES.md" in result.out
        assert notes.read_text() == "hand-written notes\n"
    payload = json.loads(compile_into(cli, project, "--check", "--format", "json").out)
    assert payload["foreign"] == ["NOTES.md"] and payload["stale"] is False
    manifest = json.loads((project / "generated" / ".modelops-manifest.json").read_text())
    assert "NOTES.md" not in manifest["files"]


def test_a_foreign_file_stays_when_its_model_goes(cli: Callable[..., Result], project: Path) -> None:
    assert compile_into(cli, project).code == 0
    notes = project / "generated" / "staging/ml-staging/loan-risk-score/NOTES.md"
    notes.write_text("runbook draft\n")
    (project / "specs" / "loan-risk-score.yaml").unlink()
    assert compile_into(cli, project, "--check").code == 1
    assert compile_into(cli, project).code == 0
    assert [p.name for p in notes.parent.iterdir()] == ["NOTES.md"]
    assert compile_into(cli, project, "--check").code == 0
    assert compile_into(cli, project, "--full").code == 0 and notes.exists()


def test_a_foreign_file_in_the_way_stops_compile_and_check_alike(
    cli: Callable[..., Result], project: Path
) -> None:
    """A file modelops did not write, where a new model's file goes: every mode refuses with
    the same error and the file is untouched; with the very bytes modelops wants, it is adopted."""
    assert compile_into(cli, project).code == 0
    (project / "specs" / "fraud-score.yaml").write_text(spec_text("fraud-score"))
    assert compile_into(cli, project, "--full", out="expected").code == 0
    relative = "production/ml-production/fraud-score/deployment.yaml"
    in_the_way = project / "generated" / relative
    in_the_way.parent.mkdir(parents=True)
    in_the_way.write_text("kind: Mine\n")
    for extra in (["--check"], [], ["--full"]):
        result = compile_into(cli, project, *extra)
        assert result.code == 2, (extra, result)
        assert f"{in_the_way} is in the way: modelops needs that path" in result.err
        assert in_the_way.read_text() == "kind: Mine\n"
    in_the_way.write_bytes((project / "expected" / relative).read_bytes())
    assert compile_into(cli, project).code == 0
    assert compile_into(cli, project, "--check").code == 0
    assert read_tree(project / "generated") == read_tree(project / "expected")


def test_a_damaged_manifest_says_every_file_counts_as_modelops(
    cli: Callable[..., Result], project: Path
) -> None:
    assert compile_into(cli, project).code == 0
    (project / "generated" / ".modelops-manifest.json").write_text("<<<<<<< HEAD\n")
    result = compile_into(cli, project, "--check")
    assert result.code == 1 and ".modelops-manifest.json is damaged" in result.out


# --- item 13: --out that cannot be a tree of its own --------------------------------------------


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("/", "is the filesystem root"),
        (".", "is the project"),
        ("..", "holds the project"),
        ("specs", "is the specs directory"),
        ("specs/out", "is inside the specs directory"),
        ("home", "is your home directory"),
        ("specs/modelops.yaml", "exists and is not a directory"),
        ("missing/generated", "its parent directory"),
    ],
)
def test_an_out_that_cannot_be_a_tree_of_its_own_is_a_usage_error(
    cli: Callable[..., Result], project: Path, monkeypatch: pytest.MonkeyPatch, target: str, message: str
) -> None:
    home = project.parent / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    out = Path("/") if target == "/" else home if target == "home" else project / target
    before = read_tree(project / "specs")
    result = cli("compile", project / "specs", "--out", out)
    assert result.code == 2, result
    assert message in result.err and "internal error" not in result.err
    if target != "/":  # today's --check of / would read the whole filesystem
        assert cli("compile", project / "specs", "--out", out, "--check").code == 2
    assert read_tree(project / "specs") == before
    assert list(home.iterdir()) == [] and not (project / "missing").exists()
