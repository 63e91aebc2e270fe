"""Print diagnostics as text for people, JSON for programs, or GitHub workflow annotations."""

from __future__ import annotations

import json
import os
import sys
from typing import IO, Any

from compiler.diagnostics import Diagnostic, Severity

FORMATS = ("text", "json", "github")


def use_color(stream: IO[str]) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    return hasattr(stream, "isatty") and stream.isatty()


def _paint(text: str, code: str, color: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if color else text


def format_text(diagnostic: Diagnostic, color: bool) -> str:
    label = _paint(
        diagnostic.severity.value,
        "1;31" if diagnostic.severity is Severity.ERROR else "1;33",
        color,
    )
    place = _paint(f"{diagnostic.file}:{diagnostic.line}:{diagnostic.column}", "1", color)
    return f"{place}: {label}: {diagnostic.message}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_github(diagnostic: Diagnostic) -> str:
    """A workflow command that GitHub shows as an annotation on the file and line."""
    title = _escape_property(f"modelops {diagnostic.code}")
    return (
        f"::{diagnostic.severity.value} file={_escape_property(diagnostic.file)},"
        f"line={diagnostic.line},col={diagnostic.column},title={title}"
        f"::{_escape_data(diagnostic.message)}"
    )


def as_json(diagnostic: Diagnostic) -> dict[str, Any]:
    return {
        "file": diagnostic.file,
        "line": diagnostic.line,
        "column": diagnostic.column,
        "severity": diagnostic.severity.value,
        "code": diagnostic.code,
        "message": diagnostic.message,
    }


def summary(diagnostics: list[Diagnostic]) -> str:
    errors = sum(d.is_error for d in diagnostics)
    warnings = len(diagnostics) - errors
    files = len({d.file for d in diagnostics})
    return (
        f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''} "
        f"in {files} file{'s' if files != 1 else ''}"
    )


def print_diagnostics(
    diagnostics: list[Diagnostic],
    fmt: str,
    *,
    extra: dict[str, Any] | None = None,
    ok_message: str = "",
    stream: IO[str] | None = None,
) -> None:
    out = stream or sys.stdout
    if fmt == "json":
        payload: dict[str, Any] = {
            "valid": not any(d.is_error for d in diagnostics),
            "errors": sum(d.is_error for d in diagnostics),
            "warnings": sum(not d.is_error for d in diagnostics),
            "diagnostics": [as_json(d) for d in diagnostics],
        }
        payload.update(extra or {})
        out.write(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        return
    if fmt == "github":
        for diagnostic in diagnostics:
            out.write(format_github(diagnostic) + "\n")
        return
    color = use_color(out)
    for diagnostic in diagnostics:
        out.write(format_text(diagnostic, color) + "\n")
    if diagnostics:
        out.write(summary(diagnostics) + "\n")
    if ok_message and not any(d.is_error for d in diagnostics):
        out.write(ok_message + "\n")
