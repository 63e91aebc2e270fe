"""`modelops compile`: validate, render, then write what changed in generated/, or check it is fresh."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from compiler.bundle.layout import MANIFEST
from compiler.bundle.writer import (
    TreeChanges,
    check_target,
    compare_listings,
    ensure_ours,
    interrupted,
    locked,
    refuse_in_the_way,
    update_tree,
)
from compiler.cli.report import print_diagnostics
from compiler.compile import CannotKeep, Compiled, CompileInput, PreviousTree, compile_entries, entries_of
from compiler.errors import UsageError
from compiler.pipeline import Checked, check, check_at_ref
from compiler.spec.catalog import find_project_file
from compiler.targets.kubernetes.labels import Stamp

EXIT_OK, EXIT_STALE = 0, 1
FOREIGN_SHOWN = 10  # foreign files named one by one in text output; the rest are counted


def run_compile(args: argparse.Namespace) -> int:
    paths = args.paths
    if args.ref is not None:
        working = find_project_file(paths, args.project)
        with check_at_ref(paths, args.project, args.environments, args.ref) as (checked, snap):
            inputs = _passed(checked, args.format)
            if inputs is None:
                return 1
            commit = None if args.stamp is False else snap.commit  # the ref's commit, unless --no-stamp
            return _compile(args, inputs, commit, working, lambda: inputs)
    inputs = _check_working_tree(args, paths)
    if inputs is None:
        return 1
    commit = None
    if inputs.project.output.stamp if args.stamp is None else args.stamp:
        from compiler.gitops.stamp import commit_stamp

        commit = commit_stamp(inputs.project_file.parent)
    return _compile(
        args,
        inputs,
        commit,
        inputs.project_file,
        lambda: _passed(check(paths, args.project, args.environments)),
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
    project_file: Path,
    full_check: Callable[[], CompileInput | None],
) -> int:
    """`project_file` is the working tree's (with --ref, `inputs` come from another commit)."""
    if args.format == "text":
        print_diagnostics(inputs.diagnostics, "text")  # warnings only, if any
    root = project_file.resolve().parent.parent
    out: Path = args.out if args.out is not None else root / "generated"
    check_target(out, root, [project_file.parent, *(path for path in args.paths if path.is_dir())])
    stamp = Stamp(commit)
    if args.check:
        if interrupted(out):  # --check writes nothing, so it cannot finish the update itself
            raise UsageError(
                f"a compile of {out} was stopped half-way through writing; run `modelops compile` "
                "to finish it, then check again"
            )
        previous = PreviousTree.from_disk(out)
        _warn_damaged(previous, out, args.format)
        compiled = compile_entries(
            inputs.entries, inputs.project, stamp, previous, args.environments, reuse=False
        )
        refuse_in_the_way(out, compiled.listing(), previous.foreign)  # as compile would
        changes = compare_listings(compiled.listing(), previous.full_listing())
        _report(changes, out, args.format, check=True, models=len(inputs.entries), foreign=previous.foreign)
        return EXIT_STALE if changes.any else EXIT_OK
    try:
        with locked(out) as tree:
            ensure_ours(tree)
            previous = PreviousTree.from_disk(out) if args.full else PreviousTree.from_manifest(out)
            if previous.manifest is None:  # no manifest, or a damaged one: see what is there
                previous = PreviousTree.from_disk(out)
            _warn_damaged(previous, out, args.format)
            try:
                compiled = _render(args, inputs, stamp, previous)
            except CannotKeep:  # a cached model whose directory is gone or stale: check it all
                checked_again = full_check()
                if checked_again is None:
                    return 1
                inputs = checked_again
                compiled = _render(args, inputs, stamp, previous)
            refuse_in_the_way(out, compiled.listing(), previous.foreign)
            changes = update_tree(tree, compiled.files, compiled.kept, previous.full_listing())
    except OSError as err:  # full disk, permissions: nothing was committed, the old tree is intact
        raise UsageError(
            f"cannot write {out}: {err.strerror or err}; the previous tree was left as it was"
        ) from err
    total = len(compiled.files) + len(compiled.kept)
    _report(
        changes,
        out,
        args.format,
        check=False,
        models=len(inputs.entries),
        total=total,
        foreign=previous.foreign,
    )
    if args.format == "text":
        checked = f"checked {inputs.checked} spec file{'s' if inputs.checked != 1 else ''}"
        cached = f", {inputs.cached} unchanged from the cache" if inputs.cached else ""
        print(f"rendered {compiled.rendered}, reused {compiled.reused} unchanged ({checked}{cached})")
    return EXIT_OK


def _render(args: argparse.Namespace, inputs: CompileInput, stamp: Stamp, previous: PreviousTree) -> Compiled:
    return compile_entries(
        inputs.entries, inputs.project, stamp, previous, args.environments, reuse=not args.full
    )


def _warn_damaged(previous: PreviousTree, out: Path, fmt: str) -> None:
    if previous.damaged and fmt != "json":
        print(
            f"warning: {out / MANIFEST} is damaged, so modelops cannot tell its files from others: "
            f"every file in {out} counts as its own, and those the new output lacks are removed"
        )


def _report(
    changes: TreeChanges,
    out: Path,
    fmt: str,
    *,
    check: bool,
    models: int,
    total: int = 0,
    foreign: Mapping[str, str],
) -> None:
    if fmt == "json":
        payload = {
            "output": str(out),
            "check": check,
            "stale": changes.any if check else None,
            "added": changes.added,
            "changed": changes.changed,
            "removed": changes.removed,
            "foreign": sorted(foreign),
            "models": models,
        }
        print(json.dumps(payload, indent=2, sort_keys=True))
        return
    _report_foreign(sorted(foreign), out, fmt)
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


def _report_foreign(foreign: list[str], out: Path, fmt: str) -> None:
    """Files modelops did not write (not in its manifest): named, never removed or counted stale."""
    for path in foreign if fmt == "github" else foreign[:FOREIGN_SHOWN]:
        where = f"{out.name}/{path}"
        if fmt == "github":
            print(
                f"::warning file={where},title=modelops foreign file::"
                f"{where} is not written by modelops; left alone"
            )
        else:
            print(f"left alone (not written by modelops, not in {MANIFEST}): {where}")
    if fmt != "github" and len(foreign) > FOREIGN_SHOWN:
        print(f"left alone: {len(foreign) - FOREIGN_SHOWN} more files not written by modelops")
