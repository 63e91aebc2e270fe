"""`modelops compile`: arguments to `compiler.api`, its result to text, JSON or annotations, exit codes."""

from __future__ import annotations

import argparse
import json
import sys

from compiler.api import CheckFailed, Mode, Options, Written, check, write
from compiler.bundle.layout import MANIFEST
from compiler.cli.progress import Progress
from compiler.cli.report import as_json, print_diagnostics
from compiler.diagnostics import Diagnostic

EXIT_OK, EXIT_STALE, EXIT_FAILED = 0, 1, 1
FOREIGN_SHOWN = 10  # foreign files named one by one in text output; the rest are counted


def run_compile(args: argparse.Namespace) -> int:
    modes = {(False, False): Mode.UPDATE, (False, True): Mode.FULL, (True, False): Mode.CHECK}
    mode = modes.get((args.check, args.full), Mode.VERIFY)  # --check --full: render every model
    checking = mode in (Mode.CHECK, Mode.VERIFY)
    options = Options(args.paths, args.project, args.environments, args.ref, args.stamp, args.out, args.jobs)
    fmt: str = args.format
    try:
        with Progress("compile", fmt) as progress:
            progress.show("checking specs")
            project = check(options, mode)
            progress.clear()
            if fmt == "text":
                print_diagnostics(project.diagnostics, "text")  # warnings only, if any
            progress.show("rendering and comparing" if checking else "rendering and writing")
            written = write(project, mode, warn=None if fmt == "json" else print)
    except CheckFailed as failed:
        print_diagnostics(failed.diagnostics, fmt)
        print(failed, file=sys.stderr)
        return EXIT_FAILED
    _report(written, fmt, check=checking, warnings=project.diagnostics)
    if fmt == "text" and not checking:
        inputs = project.inputs
        checked = f"checked {inputs.checked} spec file{'s' if inputs.checked != 1 else ''}"
        cached = f", {inputs.cached} unchanged from the cache" if inputs.cached else ""
        print(f"rendered {written.rendered}, reused {written.reused} unchanged ({checked}{cached})")
    return EXIT_STALE if checking and written.stale else EXIT_OK


def _report(written: Written, fmt: str, *, check: bool, warnings: list[Diagnostic]) -> None:
    changes, out = written.changes, written.out
    if fmt == "json":  # the shape docs/json/compile.schema.json documents
        payload = {
            "diagnostics": [as_json(d) for d in warnings],
            "output": str(out),
            "check": check,
            "stale": changes.any if check else None,
            "added": changes.added,
            "changed": changes.changed,
            "removed": changes.removed,
            "foreign": sorted(written.foreign),
            "models": written.models,
        }
        print(json.dumps(payload, indent=2, sort_keys=True))
        return
    _report_foreign(sorted(written.foreign), written, fmt)
    if check:  # a write lists nothing per file: `git status` shows that better
        for label, paths in (
            ("added", changes.added),
            ("changed", changes.changed),
            ("removed", changes.removed),
        ):
            for path in paths:
                where = f"{out.name}/{path}"
                if fmt == "github":
                    print(f"::error file={where},title=modelops stale::{where} would be {label}")
                else:
                    print(f"would be {label}: {where}")
    counts = f"{len(changes.added)} added, {len(changes.changed)} changed, {len(changes.removed)} removed"
    if not check:
        print(f"compiled {written.models} model environments into {out}: {written.files} files ({counts})")
    elif changes.any:
        print(f"{out} is stale ({counts}); run `modelops compile` and commit the result")
    else:
        print(f"{out} is up to date ({written.models} model environments)")


def _report_foreign(foreign: list[str], written: Written, fmt: str) -> None:
    """Files modelops did not write (not in its manifest): named, never removed or counted stale."""
    for path in foreign if fmt == "github" else foreign[:FOREIGN_SHOWN]:
        where = f"{written.out.name}/{path}"
        if fmt == "github":
            print(
                f"::warning file={where},title=modelops foreign file::"
                f"{where} is not written by modelops; left alone"
            )
        else:
            print(f"left alone (not written by modelops, not in {MANIFEST}): {where}")
    if fmt != "github" and len(foreign) > FOREIGN_SHOWN:
        print(f"left alone: {len(foreign) - FOREIGN_SHOWN} more files not written by modelops")
