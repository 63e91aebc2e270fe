"""Which commit the output was compiled from, for the stamp annotation."""

from __future__ import annotations

from pathlib import Path


def commit_stamp(specs_dir: Path) -> str | None:
    """HEAD's commit, marked `-dirty` when the specs have uncommitted changes; None outside Git."""
    try:
        import git
    except ImportError:  # pragma: no cover - GitPython is a dependency, but git itself may be missing
        return None
    try:
        repo = git.Repo(specs_dir, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandNotFound):
        return None
    try:
        sha = repo.head.commit.hexsha
    except ValueError:  # a repository without commits
        return None
    worktree = repo.working_tree_dir
    relative = str(specs_dir.resolve().relative_to(Path(worktree).resolve())) if worktree else None
    dirty = repo.is_dirty(untracked_files=True, path=relative)
    return f"{sha}-dirty" if dirty else sha
