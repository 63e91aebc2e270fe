"""`modelops diff` (against the cluster) and `modelops apply`: arguments, printing, exit codes."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from compiler.cli.progress import Progress
from compiler.cli.report import print_diagnostics, use_color
from compiler.errors import UsageError

if TYPE_CHECKING:  # imported when used: --help and validate stay fast
    from compiler.reconcile.apply import ApplyReport
    from compiler.reconcile.client import Cluster
    from compiler.reconcile.environments import Target
    from compiler.reconcile.errors import ReconcileError, Stage

EXIT_SAME, EXIT_DIFFERENT, EXIT_ERROR, EXIT_INTERNAL = 0, 1, 2, 3  # diff, as kubectl diff
EXIT_APPLIED, EXIT_APPLY_FAILED = 0, 1


def _targets(args: argparse.Namespace) -> list[Target]:
    from compiler import api

    if args.request_timeout <= 0:
        raise UsageError(f"--request-timeout must be more than 0 seconds, not {args.request_timeout:g}")
    options = api.Options(paths=tuple(args.paths), project=args.project, environments=args.environments)
    try:
        return api.targets(options, args.context)
    except api.CheckFailed as failed:
        print_diagnostics(failed.diagnostics, "text", stream=sys.stderr)
        raise UsageError("the specs do not compile; fix the errors above first") from None


def _stopped(lines: list[str], error: ReconcileError, code: int) -> int:
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
    for target in _targets(args):
        try:
            cluster = connect(target.context, args.kubeconfig, args.request_timeout)
            results.append((target.environment, api.plan(cluster, target)))
        except ReconcileError as error:
            return _stopped([f"modelops: error: {target.environment}: {error}"], error, EXIT_ERROR)
    lines = [diff_json(results)] if args.format == "json" else diff_text(results, use_color(sys.stdout))
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    changed = any(c.action is not Action.UNCHANGED for _, changes in results for c in changes)
    return EXIT_DIFFERENT if changed else EXIT_SAME


def run_apply(args: argparse.Namespace) -> int:
    from compiler import api
    from compiler.reconcile.apply import ApplyOptions
    from compiler.reconcile.changeset import Action
    from compiler.reconcile.client import connect
    from compiler.reconcile.errors import ReconcileError, Stage
    from compiler.reconcile.report import (
        apply_json,
        done_lines,
        dry_run_lines,
        error_lines,
        pending_steps,
        stage_line,
    )

    options = ApplyOptions(
        args.force_conflicts, args.force, args.prune, args.prune_max_share, args.prune_allow_mass_delete
    )
    as_json = args.format == "json"
    results: list[dict[str, object]] = []
    status = EXIT_APPLIED
    for target in _targets(args):
        env = target.environment

        def progress(stage: Stage, count: int, env: str = env) -> None:
            print(stage_line(env, stage, count), file=sys.stderr, flush=True)

        report: ApplyReport | None = None
        rollouts: dict[str, str] | None = None
        failure: ReconcileError | None = None
        try:
            cluster = connect(target.context, args.kubeconfig, args.request_timeout)
            progress(Stage.PLAN, len(target.objects))
            changes = api.plan(cluster, target, force_conflicts=args.force_conflicts)
            if args.dry_run:
                if as_json:
                    pending = pending_steps(changes, args.prune)
                    unchanged = sum(c.action is Action.UNCHANGED for c in changes)
                    results.append(apply_json(env, dry_run=True, steps=pending, unchanged=unchanged))
                else:
                    print("\n".join(dry_run_lines(env, changes, args.prune)))
                continue
            report = api.apply(cluster, target, changes, options, progress)
            if not as_json:
                print("\n".join(done_lines(env, report.done, len(report.unchanged))), flush=True)
            if args.wait:
                rollouts = _wait(cluster, target, args, progress)
                if not as_json:
                    for model, state in sorted(rollouts.items()):
                        print(f"{env}: {model}: {state}")
        except ReconcileError as error:
            status = _stopped(error_lines(env, error), error, EXIT_APPLY_FAILED)
            failure = error
        done, unchanged = (list(report.done), len(report.unchanged)) if report else ([], 0)
        results.append(
            apply_json(env, dry_run=False, steps=done, unchanged=unchanged, rollouts=rollouts, error=failure)
        )
        if failure is not None and failure.stage is not Stage.WAIT:
            break  # a wait that timed out leaves the next environment to apply; any other stop, not
    if as_json:
        print(json.dumps({"ok": status == EXIT_APPLIED, "environments": results}, indent=2, sort_keys=True))
    return status


def _wait(
    cluster: Cluster,
    target: Target,
    args: argparse.Namespace,
    stage: Callable[[Stage, int], None],
) -> dict[str, str]:
    """Wait for the rollouts; on a terminal, count the Deployments that are ready as it polls."""
    from compiler.reconcile.errors import Stage
    from compiler.reconcile.wait import wait_for_rollout

    stage(Stage.WAIT, sum(d.ref.kind == "Deployment" for d in target.objects))
    with Progress("apply", args.format) as shown:

        def on_poll(ready: int, total: int) -> None:
            shown.show(f"{target.environment}: waiting for rollouts, ready", ready, total)

        return wait_for_rollout(cluster, target.objects, args.timeout, on_poll)
