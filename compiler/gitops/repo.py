"""Read specs as they are at any commit, branch or tag, straight from Git's object database.

Nothing is checked out: the working tree and the index are never touched. The blobs of the
project's directories are exported to a scratch directory that the normal pipeline reads.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.errors import UsageError

if TYPE_CHECKING:
    import git

EXPORTED_DIRS = ("specs", "evaluations")


@dataclass(frozen=True)
class Snapshot:
    """The project as it is at one commit, exported to `root`."""

    ref: str
    commit: str
    root: Path


def open_repo(path: Path) -> git.Repo:
    import git

    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise UsageError(f"{path} is not inside a Git repository; --ref and --base need one") from None


def resolve(repo: git.Repo, ref: str) -> git.Commit:
    import git

    try:
        commit = repo.commit(ref)
    except (git.BadName, ValueError, git.GitCommandError):
        raise UsageError(f"unknown Git ref {ref!r}: no commit, branch or tag by that name") from None
    return commit


def _export_tree(tree: git.Tree, target: Path) -> None:
    for item in tree.traverse():
        if item.type == "blob":  # type: ignore[union-attr]
            destination = target / item.path  # type: ignore[union-attr]
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(item.data_stream.read())  # type: ignore[union-attr]


@contextlib.contextmanager
def snapshot(project_dir: Path, ref: str) -> Iterator[Snapshot]:
    """The project's specs and evaluation records at `ref`, in a scratch directory."""
    repo = open_repo(project_dir)
    commit = resolve(repo, ref)
    worktree = Path(repo.working_tree_dir or ".").resolve()
    root = project_dir.resolve().parent
    try:
        prefix = root.relative_to(worktree)
    except ValueError:
        raise UsageError(f"{project_dir} is outside the Git repository at {worktree}") from None
    with tempfile.TemporaryDirectory(prefix="modelops-ref-") as scratch:
        for name in (project_dir.name, *EXPORTED_DIRS):
            path = (prefix / name).as_posix()
            try:
                tree = commit.tree / path if path != "." else commit.tree
            except KeyError:
                continue  # not there at that commit (no evaluations yet, say)
            _export_tree(tree, Path(scratch) / "tree")
        exported = Path(scratch) / "tree" / prefix
        if not (exported / project_dir.name).is_dir():
            raise UsageError(f"{(prefix / project_dir.name).as_posix()}/ does not exist at {ref}")
        yield Snapshot(ref, commit.hexsha, exported)


def blob_at(commit: git.Commit, path: str) -> bytes | None:
    try:
        data: bytes = (commit.tree / path).data_stream.read()
    except KeyError:
        return None
    return data
