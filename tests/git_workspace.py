"""A throw-away Git repository that tests edit and commit step by step (shared by the Git tests)."""

from __future__ import annotations

from pathlib import Path

import git


class GitWorkspace:
    """A repository at `root` with a fixed committer; `edit` replaces text, `save` commits it all."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.repo = git.Repo.init(root, initial_branch="main")
        self.repo.config_writer().set_value("user", "name", "Test").release()
        self.repo.config_writer().set_value("user", "email", "test@example.com").release()

    def edit(self, path: str, old: str, new: str) -> None:
        target = self.root / path
        text = target.read_text()
        assert old in text, (path, old)
        target.write_text(text.replace(old, new, 1))

    def save(self, message: str, author: git.Actor | None = None) -> str:
        """Commit every change in the tree; the commit's sha."""
        self.repo.git.add(A=True)
        return self.repo.index.commit(message, author=author, committer=author).hexsha
