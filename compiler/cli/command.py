"""A subcommand as data: its name, the function adding its arguments, and its handler.

The handler's docstring is the help text (first paragraph: the one-line summary in
`modelops --help`; the rest: the description in `modelops COMMAND --help`), so what a command
does is written once, next to the code that does it, as click and typer do.
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass

Handler = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class Command:
    name: str
    arguments: Callable[[argparse.ArgumentParser], None]
    handler: Handler


def register(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser], commands: Iterable[Command]
) -> None:
    """Add each command to the parser, with its help from its handler's docstring."""
    for command in commands:
        summary, _, details = (inspect.getdoc(command.handler) or "").partition("\n\n")
        parser = subcommands.add_parser(
            command.name,
            help=" ".join(summary.split()),
            description=" ".join(details.split()) or None,
        )
        command.arguments(parser)
        parser.set_defaults(handler=command.handler)
