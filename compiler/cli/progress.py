"""A one-line progress status on stderr, for a person at a terminal only.

Pipes, CI logs and the machine formats (json, github) never see it: a redrawn line is noise
in a log file and would corrupt output a program parses. No dependency: a counter is enough.
"""

from __future__ import annotations

import os
import sys
from types import TracebackType
from typing import IO

MACHINE_FORMATS = ("json", "github")


def wanted(fmt: str, stream: IO[str]) -> bool:
    """Show progress only on an interactive terminal, outside CI, for the human formats."""
    if fmt in MACHINE_FORMATS or os.environ.get("CI") or os.environ.get("TERM") == "dumb":
        return False
    return hasattr(stream, "isatty") and stream.isatty()


class Progress:
    """`command: what [done/total]`, redrawn in place; cleared when the work is done."""

    def __init__(self, command: str, fmt: str, stream: IO[str] | None = None) -> None:
        self.command = command
        self.stream = stream or sys.stderr
        self.enabled = wanted(fmt, self.stream)
        self.shown = False

    def show(self, what: str, done: int | None = None, total: int | None = None) -> None:
        if not self.enabled:
            return
        count = f" [{done}/{total}]" if done is not None and total is not None else ""
        self.stream.write(f"\r\033[K{self.command}: {what}{count}")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        """Erase the status line, so that what is printed next starts on a clean line."""
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.clear()
