"""`modelops compile`: validate, render, then write what changed in generated/, or check it is fresh."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from compiler.bundle.writer import (
    TreeChanges,
    compare_listings,
    ensure_ours,
    interrupted,
    locked,
    update_tree,
)
from compiler.cli.report import print_diagnostics
from compiler.compile import CannotKeep, Compiled, CompileInput, PreviousTree, compile_entries, entries_of
from compiler.errors import UsageError
from compiler.pipeline import Checked, check, check_at_ref
from compiler.spec.catalog import find_project_file
from compiler.targets.kubernetes.labels import Stamp

EXIT_OK, EXIT_STALE = 0, 1


def run_compile(args: argparse.Namespace) -> int:
    paths = args.paths or [Path("specs")]
    if args.ref is not None:
        working = find_project_file(paths, args.project).resolve().parent.parent
        with check_at_ref(paths, args.project, args.environments, args.ref) as (checked, snap):
            inputs = _passed(checked, args.format)
            if inputs is None:
                return 1
            commit = None if args.stamp is False else snap.commit  # the ref's commit, unless --no-stamp
            return _compile(args, inputs, commit, working / "generated", lambda: inputs)
    inputs = _check_working_tree(args, paths)
    if inputs is None:
        return 1
    commit = None
    if inputs.project.output.stamp if args.stamp is None else args.stamp:
        from compiler.gitops.stamp import commit_stamp

        commit = commit_stamp(inputs.project_file.parent)
    return _compile(
        args, inputs, commit, None, lambda: _passed(check(paths, args.project, args.environments))
    )


def _passed(checked: Checked, fmt: str | None = None) -> CompileInput | None:
    """Compile's view of a full check; None (with the errors printed) when it failed."""
    if not checked.ok or checked.catalog is None:
        print_diagnostics(checked.diagnostics, fmt or "text")
        print("compile stopped: fix the errors above; nothing was written", file=sys.stderr)
        return None
    catalog = checked.catalog
    return CompileInput(
        catalog.project,
        catalog.project_file,
        catalog.root,
        entries_of(checked.models),
        checked.diagnostics,
        catalog.spec_files,
    )


def _check_working_tree(args: argparse.Namespace, paths: list[Path]) -> CompileInput | None:
    """The check, served from the cache for unchanged specs unless --full or --check trust nothing."""
    from compiler import check_cache

    if args.full or args.check:
        return _passed(check(paths, args.project, args.environments), args.format)
    project_file = find_project_file(paths, args.project)
    root = project_file.resolve().parent.parent
    context = check_cache.context_key(project_file, root)
    quick = check_cache.quick_check(paths, project_file, args.environments, context)
    if quick is not None:
        inputs, entries = quick
        if entries is not None:
            check_cache.save(root, context, entries)
        return inputs
    checked = check(paths, args.project, args.environments)
    passed = _passed(checked, args.format)
    if passed is not None and args.environments is None:
        check_cache.save(root, context, check_cache.record(checked, passed.entries))
    return passed


def _compile(
    args: argparse.Namespace,
    inputs: CompileInput,
    commit: str | None,
    default_out: Path | None,
    full_check: Callable[[], CompileInput | None],
) -> int:
    if args.format == "text":
        print_diagnostics(inputs.diagnostics, "text")  # warnings only, if any
    out: Path = args.out if args.out is not None else default_out or inputs.root / "generated"
    stamp = Stamp(commit)
    if args.check:
        if interrupted(out):  # --check writes nothing, so it cannot finish the update itself
            raise UsageError(
                f"a compile of {out} was stopped half-way through writing; run `modelops compile` "
                "to finish it, then check again"
            )
        previous = PreviousTree.from_disk(out)
        compiled = compile_entries(
            inputs.entries, inputs.project, stamp, previous, args.environments, reuse=False
        )
        changes = compare_listings(compiled.listing(), previous.full_listing())
        _report(changes, out, args.format, check=True, models=len(inputs.entries))
        return EXIT_STALE if changes.any else EXIT_OK
    try:
        with locked(out):
            ensure_ours(out)
            previous = PreviousTree.from_disk(out) if args.full else PreviousTree.from_manifest(out)
            if previous.manifest is None and out.is_dir():  # a damaged manifest: see what is there
                previous = PreviousTree.from_disk(out)
            try:
                compiled = _render(args, inputs, stamp, previous)
            except CannotKeep:  # a cached model whose directory is gone or stale: check it all
                checked_again = full_check()
                if checked_again is None:
                    return 1
                inputs = checked_again
                compiled = _render(args, inputs, stamp, previous)
            changes = update_tree(out, compiled.files, compiled.kept, previous.full_listing())
    except OSError as err:  # full disk, permissions: nothing was committed, the old tree is intact
        raise UsageError(
            f"cannot write {out}: {err.strerror or err}; the previous tree was left as it was"
        ) from err
    total = len(compiled.files) + len(compiled.kept)
    _report(changes, out, args.format, check=False, models=len(inputs.entries), total=total)
    if args.format == "text":
        checked = f"checked {inputs.checked} spec file{'s' if inputs.checked != 1 else ''}"
        cached = f", {inputs.cached} unchanged from the cache" if inputs.cached else ""
        print(f"rendered {compiled.rendered}, reused {compiled.reused} unchanged ({checked}{cached})")
    return EXIT_OK


def _render(args: argparse.Namespace, inputs: CompileInput, stamp: Stamp, previous: PreviousTree) -> Compiled:
    return compile_entries(
        inputs.entries, inputs.project, stamp, previous, args.environments, reuse=not args.full
    )


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
