"""Bundle: the whole compiled output as (relative path, bytes), ordered and duplicate-free."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

# What a sink's `put` hands back for `took`: the bytes themselves, the name a file was staged
# under, or nothing (a file that needs no writing, or a sink that only wants digests).
Placed = bytes | str | None


class Sink(Protocol):
    """Where rendered files go as they are made: a Bundle in memory, a write's staging area, or
    nowhere (a check needs the digests alone). A file goes in two steps, so that the process
    rendering it (a worker, forked after `fds`) can put it in place itself and hand back only
    a little: `put` there, then `took` in the compile's own process, in the tree's order."""

    def fds(self) -> list[int]:
        """Get ready for `put` in forked workers: the descriptors they must keep open."""
        ...

    def put(self, path: str, content: bytes, sha: str) -> Placed: ...

    def took(self, path: str, sha: str, placed: Placed) -> None: ...


class Files(Protocol):
    """Takes whole files, one by one, in the compile's own process."""

    def add(self, path: str, content: bytes) -> None: ...


@dataclass
class Bundle:
    files: dict[str, bytes] = field(default_factory=dict)

    def add(self, path: str, content: bytes) -> None:
        if path in self.files:
            raise ValueError(f"two outputs want the same path {path!r}")
        if path.startswith("/") or ".." in path.split("/"):
            raise ValueError(f"output path {path!r} must stay inside the output directory")
        self.files[path] = content

    def fds(self) -> list[int]:
        return []

    def put(self, path: str, content: bytes, sha: str) -> Placed:
        return content  # back to the compile's process, which keeps it

    def took(self, path: str, sha: str, placed: Placed) -> None:
        assert isinstance(placed, bytes)
        self.add(path, placed)

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        for path in sorted(self.files):
            yield path, self.files[path]

    def __len__(self) -> int:
        return len(self.files)
