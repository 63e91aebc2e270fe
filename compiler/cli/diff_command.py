"""`modelops diff --base REF [--head REF]`: compile both sides and say what changes."""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Iterator

from compiler.bundle.layout import MANIFEST
from compiler.cli.report import print_diagnostics
from compiler.compile import render_beside, render_models
from compiler.errors import UsageError
from compiler.pipeline import Checked, check, check_at_ref
from compiler.review.compare import compare_trees
from compiler.review.render import DiffReport, as_json, as_markdown, as_text
from compiler.review.summary import breaking_changes, summarise
from compiler.spec.catalog import find_project_file
from compiler.stamp import Stamp

EXIT_SAME, EXIT_CHANGED, EXIT_ERROR, EXIT_BREAKING = 0, 1, 2, 4
ALLOW_TRAILER = re.compile(r"^Modelops-Allow-Breaking:\s*(yes|true)\s*$", re.MULTILINE | re.IGNORECASE)


@contextlib.contextmanager
def _side(args: argparse.Namespace, ref: str | None) -> Iterator[Checked]:
    paths = args.paths
    if ref is None:
        yield check(paths, args.project, args.environments)
        return
    with check_at_ref(paths, args.project, args.environments, ref) as (checked, _):
        yield checked


def _compiled(checked: Checked, side: str, beside: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """One side's tree; the head side reuses the base side's files where a model's inputs match."""
    if not checked.ok:
        print_diagnostics(checked.diagnostics, "text", stream=sys.stderr)
        raise UsageError(f"the {side} side does not compile; fix the errors above")
    assert checked.catalog is not None  # ok implies a catalog
    project = checked.catalog.project
    # No stamps: the commit annotation would differ in every file and hide the real changes.
    if beside is None:
        return render_models(checked.models, project, Stamp(None))
    return render_beside(checked.models, project, Stamp(None), beside)


def _acknowledged(args: argparse.Namespace) -> bool:
    if args.allow_breaking:
        return True
    from compiler.gitops.repo import open_repo

    project_dir = find_project_file(args.paths, args.project).parent
    repo = open_repo(project_dir)
    span = f"{args.base}..{args.head or 'HEAD'}"
    return any(
        ALLOW_TRAILER.search(str(commit.message)) for commit in repo.iter_commits(span, max_count=1000)
    )


def run_diff(args: argparse.Namespace) -> int:
    if args.base is None:
        raise UsageError("--head needs --base REF: the other side of the comparison")
    with _side(args, args.base) as base:
        base_files = _compiled(base, f"base ({args.base})")
        base_models = base.models
    with _side(args, args.head) as head:
        head_files = _compiled(head, f"head ({args.head or 'working tree'})", base_files)
        head_models = head.models
    files = compare_trees(base_files, head_files, frozenset({MANIFEST}))
    models = summarise(base_models, head_models, base_files, head_files, files)
    breaking = breaking_changes(models, base_files, head_files)
    report = DiffReport(
        args.base,
        args.head or "working tree",
        models,
        files,
        breaking,
        bool(breaking) and _acknowledged(args),
    )
    rendered = {"json": as_json, "markdown": as_markdown}.get(args.format, as_text)(report)
    sys.stdout.write(rendered)
    if args.fail_on_breaking and breaking and not report.acknowledged:
        print(
            f"modelops: {len(breaking)} breaking change(s); label the PR modelops:breaking or add the "
            "trailer 'Modelops-Allow-Breaking: yes' to accept them",
            file=sys.stderr,
        )
        return EXIT_BREAKING
    return EXIT_CHANGED if files or models else EXIT_SAME
