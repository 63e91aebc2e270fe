"""`modelops compile`: validate, render, then write generated/ atomically or check it is fresh."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from compiler.bundle.writer import TreeChanges, compare, read_tree, write_tree
from compiler.cli.report import print_diagnostics
from compiler.compile import compile_checked
from compiler.errors import UsageError
from compiler.pipeline import Checked, check, check_at_ref
from compiler.spec.catalog import find_project_file
from compiler.targets.kubernetes.labels import Stamp

EXIT_OK, EXIT_STALE = 0, 1


def run_compile(args: argparse.Namespace) -> int:
    paths = args.paths or [Path("specs")]
    if args.ref is None:
        return _compile(args, check(paths, args.project, args.environments), None, None)
    working = find_project_file(paths, args.project).resolve().parent.parent
    with check_at_ref(paths, args.project, args.environments, args.ref) as (checked, snap):
        return _compile(args, checked, snap.commit, working / "generated")


def _compile(
    args: argparse.Namespace, checked: Checked, ref_commit: str | None, default_out: Path | None
) -> int:
    errors = [d for d in checked.diagnostics if d.is_error]
    if errors or checked.catalog is None:
        print_diagnostics(checked.diagnostics, args.format)
        print("compile stopped: fix the errors above; nothing was written", file=sys.stderr)
        return 1
    catalog = checked.catalog
    project = catalog.project
    if args.format == "text":
        print_diagnostics(checked.diagnostics, "text")  # warnings only, if any
    commit = None
    if ref_commit is not None:  # compiling a ref: the stamp is that commit, unless --no-stamp
        commit = None if args.stamp is False else ref_commit
    elif project.output.stamp if args.stamp is None else args.stamp:
        from compiler.gitops.stamp import commit_stamp

        commit = commit_stamp(catalog.project_file.parent)
    out: Path = args.out if args.out is not None else default_out or catalog.root / "generated"
    existing = read_tree(out)
    compiled = compile_checked(checked, Stamp(commit), existing, args.environments, incremental=not args.full)
    files = compiled.files
    if args.check:
        changes = compare(files, existing)
        _report(changes, out, args.format, check=True, models=len(checked.models))
        return EXIT_STALE if changes.any else EXIT_OK
    try:
        changes = write_tree(files, out)
    except OSError as err:  # full disk, permissions: the old tree is intact, say so
        raise UsageError(
            f"cannot write {out}: {err.strerror or err}; the previous tree was left as it was"
        ) from err
    _report(changes, out, args.format, check=False, models=len(checked.models), total=len(files))
    if args.format == "text":
        print(f"rendered {compiled.rendered}, reused {compiled.reused} unchanged")
    return EXIT_OK


def _report(changes: TreeChanges, out: Path, fmt: str, *, check: bool, models: int, total: int = 0) -> None:
    if fmt == "json":
        payload = {
            "output": str(out),
            "check": check,
            "stale": changes.any if check else None,
            "added": changes.added,
            "changed": changes.changed,
            "removed": changes.removed,
            "models": models,
        }
        print(json.dumps(payload, indent=2, sort_keys=True))
        return
    if check:  # a write lists nothing per file: `git status` shows that better
        for label, paths in (
            ("added", changes.added),
            ("changed", changes.changed),
            ("removed", changes.removed),
        ):
            for path in paths:
                if fmt == "github":
                    where = f"{out.name}/{path}"
                    print(f"::error file={where},title=modelops stale::{where} would be {label}")
                else:
                    print(f"would be {label}: {out.name}/{path}")
    counts = f"{len(changes.added)} added, {len(changes.changed)} changed, {len(changes.removed)} removed"
    if check:
        if changes.any:
            print(f"{out} is stale ({counts}); run `modelops compile` and commit the result")
        else:
            print(f"{out} is up to date ({models} model environments)")
    else:
        print(f"compiled {models} model environments into {out}: {total} files ({counts})")
