"""`modelops diff` against the cluster: printing and exit codes; what `apply` shares with it."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from compiler.cli.report import print_diagnostics, use_color
from compiler.errors import UsageError

if TYPE_CHECKING:  # imported when used: --help and validate stay fast
    from compiler.reconcile.environments import Target
    from compiler.reconcile.errors import ReconcileError

EXIT_SAME, EXIT_DIFFERENT, EXIT_ERROR, EXIT_INTERNAL = 0, 1, 2, 3  # diff, as kubectl diff


def targets_of(args: argparse.Namespace) -> list[Target]:
    from compiler import api

    options = api.Options(paths=tuple(args.paths), project=args.project, environments=args.environments)
    try:
        return api.targets(options, args.context)
    except api.CheckFailed as failed:
        print_diagnostics(failed.diagnostics, "text", stream=sys.stderr)
        raise UsageError("the specs do not compile; fix the errors above first") from None


def stopped(lines: list[str], error: ReconcileError, code: int) -> int:
    """Print why a reconcile stopped (and what it did); exit `code`, or 3 for a bug."""
    print("\n".join(lines), file=sys.stderr)
    if error.unexpected and os.environ.get("MODELOPS_DEBUG"):
        raise error
    return EXIT_INTERNAL if error.unexpected else code


def run_cluster_diff(args: argparse.Namespace) -> int:
    from compiler import api
    from compiler.reconcile.changeset import Action
    from compiler.reconcile.client import connect
    from compiler.reconcile.errors import ReconcileError
    from compiler.reconcile.report import diff_json, diff_text

    results = []
    for target in targets_of(args):
        try:
            cluster = connect(target.context, args.kubeconfig, args.request_timeout)
            results.append((target.environment, api.plan(cluster, target)))
        except ReconcileError as error:
            return stopped([f"modelops: error: {target.environment}: {error}"], error, EXIT_ERROR)
    lines = [diff_json(results)] if args.format == "json" else diff_text(results, use_color(sys.stdout))
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    changed = any(c.action is not Action.UNCHANGED for _, changes in results for c in changes)
    return EXIT_DIFFERENT if changed else EXIT_SAME
