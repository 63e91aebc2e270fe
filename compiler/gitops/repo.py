"""Read specs as they are at any commit, branch or tag, straight from Git's object database.

Nothing is checked out: the working tree and the index are never touched. The blobs of the
project's directories are exported to a scratch directory that the normal pipeline reads.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
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


REGULAR_MODES = ("100644", "100755")  # the modes of plain files in a Git tree (not links)


def commit_at(path: Path, ref: str) -> tuple[Path, str] | None:
    """The repository's top directory and the commit `ref` names, without loading GitPython;
    None when either is not there (open_repo and resolve say why)."""
    try:
        found = subprocess.run(
            [
                "git",
                "-C",
                str(path),
                "rev-parse",
                "--show-toplevel",
                "--verify",
                "--end-of-options",
                f"{ref}^{{commit}}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return None
    return Path(found[0]).resolve(), found[1]


def blobs_under(worktree: Path, commit: str, paths: list[str]) -> dict[str, tuple[str, bytes]]:
    """Every blob under `paths` (repository-relative) at `commit`: path -> (mode, content), read
    with two git processes however many files there are (GitPython reads one per round trip)."""
    listed = subprocess.run(
        [
            "git",
            "--literal-pathspecs",
            "-C",
            str(worktree),
            "ls-tree",
            "-r",
            "-z",
            "--full-tree",
            commit,
            "--",
            *paths,
        ],
        capture_output=True,
        check=True,
    ).stdout
    entries = []  # (mode, sha, path) of each blob; submodules (commits) have no content here
    for record in listed.split(b"\0"):
        if record:
            meta, _, path = record.partition(b"\t")
            octal, kind, sha = meta.split(b" ")
            if kind == b"blob":
                entries.append((octal.decode(), sha, path.decode(errors="surrogateescape")))
    if not entries:
        return {}
    output = subprocess.run(
        ["git", "-C", str(worktree), "cat-file", "--batch"],
        input=b"".join(sha + b"\n" for _, sha, _ in entries),
        capture_output=True,
        check=True,
    ).stdout
    found: dict[str, tuple[str, bytes]] = {}
    offset = 0
    for mode, _, name in entries:  # each: "<sha> blob <size>\n<content>\n", in the order asked
        header_end = output.index(b"\n", offset)
        size = int(output[offset:header_end].rsplit(b" ", 1)[1])
        found[name] = (mode, output[header_end + 1 : header_end + 1 + size])
        offset = header_end + 2 + size
    return found


@contextlib.contextmanager
def snapshot(project_dir: Path, ref: str, extra: Sequence[str] = ()) -> Iterator[Snapshot]:
    """The project's specs and evaluation records at `ref`, in a scratch directory; `extra`:
    more paths (relative to the directory above the specs) to export when they exist there."""
    repo = open_repo(project_dir)
    commit = resolve(repo, ref)
    worktree = Path(repo.working_tree_dir or ".").resolve()
    root = project_dir.resolve().parent
    try:
        prefix = root.relative_to(worktree)
    except ValueError:
        raise UsageError(f"{project_dir} is outside the Git repository at {worktree}") from None
    with tempfile.TemporaryDirectory(prefix="modelops-ref-") as scratch:
        wanted = [(prefix / name).as_posix() for name in (project_dir.name, *EXPORTED_DIRS, *extra)]
        for path, (_, content) in blobs_under(worktree, commit.hexsha, wanted).items():
            destination = Path(scratch) / "tree" / path
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(content)
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
