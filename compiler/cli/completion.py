"""`modelops completion bash|zsh`: a completion script from the argument parser itself (shtab)."""

from __future__ import annotations

import argparse
from pathlib import Path

import shtab


def _complete_paths(parser: argparse.ArgumentParser) -> None:
    """Arguments that take a path (type=Path) complete file names, in every subcommand."""
    for action in parser._actions:
        if action.type is Path:
            action.complete = shtab.FILE  # type: ignore[attr-defined]  # read by shtab
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                _complete_paths(subparser)


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    _complete_paths(parser)
    return str(shtab.complete(parser, shell=shell))
