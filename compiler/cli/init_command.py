"""`modelops init` and `modelops new`: start a project, add a model (library: compiler.scaffold)."""

from __future__ import annotations

import argparse
from pathlib import Path

from compiler.cli.command import Command
from compiler.scaffold import DEFAULT_TEAM, TASKS


def _init_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", nargs="?", type=Path, default=Path(), metavar="DIR")
    parser.add_argument("--force", action="store_true", help="overwrite files that already exist")
    parser.add_argument("--minimal", action="store_true", help="write only specs/modelops.yaml")


def _new_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="model name (DNS-1123 label, at most 40 characters)")
    parser.add_argument("--task", choices=TASKS, required=True)
    parser.add_argument("--team", default=DEFAULT_TEAM, help=f"owning team (default {DEFAULT_TEAM})")
    parser.add_argument("--specs", default="specs", metavar="DIR", help="specs directory (default specs/)")
    parser.add_argument("--force", action="store_true", help="overwrite the spec if it exists")


def run_init(args: argparse.Namespace) -> int:
    """start a modelops project in DIR (specs, an example model, workflows, hooks)

    Write specs/modelops.yaml (gitops settings from the `origin` remote when there is one), an
    example spec with a small model trained here and its holdout set, .gitignore entries, GitHub
    workflows and a pre-commit configuration. Existing files are left alone: the command stops
    (exit 2) unless --force.
    """
    from compiler.scaffold.files import write_files
    from compiler.scaffold.project import init_files

    root: Path = args.directory
    written = write_files(root, init_files(root, minimal=args.minimal), force=args.force)
    for name in written:
        print(f"wrote {root / name}")
    specs = root / "specs"
    print(
        f"next: modelops validate {specs}"
        + ("" if args.minimal else f" && modelops evaluate {specs} && modelops compile {specs}")
    )
    return 0


def run_new(args: argparse.Namespace) -> int:
    """add a spec skeleton for MODEL, every field listed, valid as written

    Write SPECS/MODEL.yaml: the required fields filled, every optional one commented with its
    meaning. Put the artifact and holdout where it says, then evaluate.
    """
    from compiler.scaffold.files import write_files
    from compiler.scaffold.project import new_model_files

    files = new_model_files(args.model, args.task, team=args.team, specs=args.specs)
    for name in write_files(Path(), files, force=args.force):
        print(f"wrote {name}")
    return 0


SCAFFOLD_COMMANDS = (Command("init", _init_arguments, run_init), Command("new", _new_arguments, run_new))
