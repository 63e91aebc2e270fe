"""Bundle: the whole compiled output as (relative path, bytes), ordered and duplicate-free."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol


class Sink(Protocol):
    """Where rendered files go as they are made: a Bundle in memory, or a write's staging area."""

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

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        for path in sorted(self.files):
            yield path, self.files[path]

    def __len__(self) -> int:
        return len(self.files)
