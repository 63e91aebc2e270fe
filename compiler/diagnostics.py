"""Diagnostics: one error or warning that points at a place in a source file.

Every stage reports problems as diagnostics rather than exceptions so that one run can
report every problem in every file, and so that the CLI can print them as text, JSON or
GitHub annotations without knowing where they came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Position:
    """A 1-based line and column in a file."""

    file: str
    line: int
    column: int


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in the input, with where it is and what to do about it."""

    file: str
    line: int
    column: int
    message: str
    severity: Severity = Severity.ERROR
    code: str = "invalid"

    @classmethod
    def at(
        cls,
        position: Position,
        message: str,
        *,
        severity: Severity = Severity.ERROR,
        code: str = "invalid",
    ) -> Diagnostic:
        return cls(position.file, position.line, position.column, message, severity, code)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.file, self.line, self.column, self.message)


class DiagnosticError(Exception):
    """Raised by a stage that cannot go on; carries every diagnostic found so far."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__("; ".join(d.message for d in diagnostics))
        self.diagnostics = diagnostics


def unique_sorted(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Drop repeats (a base-spec error shows up once per environment) and sort by place."""
    return sorted(set(diagnostics), key=Diagnostic.sort_key)


# What checking each spec for each environment found: (spec source, environment) -> problems.
# The check cache keeps a spec's warnings per environment from it: a warning may point into the
# project file (a value the spec inherits from its defaults), or hold for one environment only.
Found = dict[tuple[str, str], list[Diagnostic]]


def problems_in(found: Found) -> list[Diagnostic]:
    return [problem for problems in found.values() for problem in problems]


def combined(*founds: Found) -> Found:
    """What several stages found for each (spec, environment), together."""
    both: Found = {}
    for found in founds:
        for key, problems in found.items():
            both.setdefault(key, []).extend(problems)
    return both
