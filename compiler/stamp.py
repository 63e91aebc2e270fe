"""The stamp of one compile: where its output came from, the same for every target it renders.

`compiler.gitops.stamp.commit_stamp` reads the commit from Git; this module only holds the value,
low enough in the layers that every target and every command can take it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stamp:
    """Where the output came from; `commit` is None when stamping is off or outside Git."""

    commit: str | None = None
