"""Writing a spec text into a test project and finding places in it, for located-error tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import Result


def located(text: str, needle: str, occurrence: int = 0) -> tuple[int, int]:
    """Line and column (1-based) of the `occurrence`-th `needle` in text."""
    index = -1
    for _ in range(occurrence + 1):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    return line, index - text.rfind("\n", 0, index)


def validate(cli: Callable[..., Result], project: Path, text: str) -> Result:
    """`modelops validate` of `text` written as specs/demo.yaml; never a traceback."""
    path = project / "specs" / "demo.yaml"
    path.write_text(text)
    result = cli("validate", path)
    assert "Traceback" not in result.out + result.err
    return result
