"""`modelops apply`: printing and exit codes (the work: compiler.reconcile.session)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from compiler.cli.progress import Progress
from compiler.cli.reconcile_command import stopped, targets_of

if TYPE_CHECKING:  # imported when used: --help and validate stay fast
    from compiler.reconcile.errors import Stage
    from compiler.reconcile.session import Outcome

EXIT_APPLIED, EXIT_APPLY_FAILED = 0, 1


def run_apply(args: argparse.Namespace) -> int:
    from compiler import api
    from compiler.reconcile.apply import ApplyOptions
    from compiler.reconcile.changeset import Action
    from compiler.reconcile.report import apply_json, dry_run_lines, error_lines, pending_steps
    from compiler.reconcile.session import Session

    session = Session(
        ApplyOptions(
            args.force_conflicts, args.force, args.prune, args.prune_max_share, args.prune_allow_mass_delete
        ),
        args.kubeconfig,
        args.request_timeout,
        dry_run=args.dry_run,
        wait=args.wait,
        timeout=args.timeout,
    )
    as_json = args.format == "json"
    results: list[dict[str, object]] = []
    status = EXIT_APPLIED
    with Progress("apply", args.format) as shown:
        for outcome in api.apply_environments(targets_of(args), session, _Printer(as_json, shown)):
            env, report, error = outcome.environment, outcome.report, outcome.error
            if args.dry_run and error is None:
                pending = pending_steps(outcome.changes, args.prune)
                unchanged = sum(c.action is Action.UNCHANGED for c in outcome.changes)
                results.append(apply_json(env, dry_run=True, steps=pending, unchanged=unchanged))
                if not as_json:
                    print("\n".join(dry_run_lines(env, outcome.changes, args.prune)))
                continue
            if error is not None:
                status = stopped(error_lines(env, error), error, EXIT_APPLY_FAILED)
            elif outcome.rollouts is not None and not as_json:
                print(
                    "".join(f"{env}: {model}: {state}\n" for model, state in sorted(outcome.rollouts.items()))
                )
            done, unchanged = (list(report.done), len(report.unchanged)) if report else ([], 0)
            results.append(
                apply_json(
                    env,
                    dry_run=False,
                    steps=done,
                    unchanged=unchanged,
                    rollouts=outcome.rollouts,
                    error=error,
                )
            )
    if as_json:
        print(json.dumps({"ok": status == EXIT_APPLIED, "environments": results}, indent=2, sort_keys=True))
    return status


class _Printer:
    """Progress of `apply` as it happens: stages and rollout states on stderr, applied objects on
    stdout (text format), the count of ready workloads on a terminal."""

    def __init__(self, as_json: bool, shown: Progress) -> None:
        self.as_json, self.shown = as_json, shown

    def stage(self, environment: str, stage: Stage, count: int) -> None:
        from compiler.reconcile.report import stage_line

        print(stage_line(environment, stage, count), file=sys.stderr, flush=True)

    def applied(self, outcome: Outcome) -> None:
        from compiler.reconcile.report import done_lines

        if not self.as_json and outcome.report is not None:
            report = outcome.report
            print("\n".join(done_lines(outcome.environment, report.done, len(report.unchanged))), flush=True)

    def polled(self, environment: str, ready: int, total: int) -> None:
        self.shown.show(f"{environment}: waiting for rollouts, ready", ready, total)

    def rollout_changed(self, environment: str, model: str, words: str) -> None:
        self.shown.clear()
        print(f"{environment}: {model}: {words}", file=sys.stderr, flush=True)
