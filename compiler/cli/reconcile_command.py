"""`modelops diff` (against the cluster) and `modelops apply`: reconcile compiled output."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from compiler.cli.report import print_diagnostics, use_color
from compiler.compile import render_models
from compiler.errors import UsageError
from compiler.pipeline import check
from compiler.targets.kubernetes.labels import Stamp

EXIT_SAME, EXIT_DIFFERENT, EXIT_ERROR = 0, 1, 2


def _environments(args: argparse.Namespace) -> Iterator[tuple[str, str | None, list[Any], list[Any]]]:
    """Per environment: its name, kube context, desired objects and ApplySets."""
    from compiler.reconcile.inventory import ApplySet
    from compiler.reconcile.objects import desired_objects

    checked = check(args.paths or [Path("specs")], args.project, args.environments)
    if not checked.ok or checked.catalog is None:
        print_diagnostics(checked.diagnostics, "text", stream=sys.stderr)
        raise UsageError("the specs do not compile; fix the errors above first")
    project = checked.catalog.project
    commit = None
    if project.output.stamp:
        from compiler.gitops.stamp import commit_stamp

        commit = commit_stamp(checked.catalog.project_file.parent)
    files = render_models(checked.models, project, Stamp(commit), args.environments)
    for env in project.environments:
        if args.environments and env.name not in args.environments:
            continue
        objects = desired_objects(files, env.name)
        # The environment's namespace always has an ApplySet: with every model removed, its
        # members are exactly what prune must consider.
        namespaces = sorted({d.namespace for d in objects if d.namespace} | {env.namespace})
        yield env.name, args.context or env.context, objects, [ApplySet(env.name, ns) for ns in namespaces]


def _connect(args: argparse.Namespace, context: str | None) -> Any:
    from compiler.reconcile.client import connect

    return connect(context, args.kubeconfig)


def _colour(line: str, color: bool) -> str:
    if not color:
        return line
    if line.startswith("+") and not line.startswith("+++"):
        return f"\033[32m{line}\033[0m"
    if line.startswith("-") and not line.startswith("---"):
        return f"\033[31m{line}\033[0m"
    return line


def run_cluster_diff(args: argparse.Namespace) -> int:
    from compiler.reconcile.diff import plan

    try:
        results = []
        for env, context, objects, applysets in _environments(args):
            results.append((env, plan(_connect(args, context), objects, applysets)))
    except UsageError:
        raise
    except Exception as error:  # the API server's answers and connection failures
        print(f"modelops: error: {_describe(error)}", file=sys.stderr)
        return EXIT_ERROR
    changed = False
    if args.format == "json":
        payload = [
            {
                "environment": env,
                "ref": c.ref,
                "model": c.model,
                "status": c.status,
                "diff": c.unified(),
                "conflicts": c.conflicts,
            }
            for env, changes in results
            for c in changes
            if c.status != "unchanged"
        ]
        print(json.dumps(payload, indent=2))
        changed = bool(payload)
        return EXIT_DIFFERENT if changed else EXIT_SAME
    color = use_color(sys.stdout)
    for env, changes in results:
        for model in sorted({c.model for c in changes}):
            mine = [c for c in changes if c.model == model]
            for change in mine:
                if change.status == "unchanged":
                    continue
                changed = True
                print(f"{change.status}: {change.ref}")
                for detail in change.conflicts:
                    print(f"  conflict {detail}")
                for line in change.unified().splitlines():
                    print(_colour(line, color))
            counts = {s: sum(c.status == s for c in mine) for s in ("changed", "added", "prune", "conflict")}
            line = f"{model}/{env}: {counts['changed']} changed, {counts['added']} added, "
            line += f"{counts['prune']} pruned"
            if counts["conflict"]:
                line += f", {counts['conflict']} in conflict"
            print(line)
    return EXIT_DIFFERENT if changed else EXIT_SAME


def run_apply(args: argparse.Namespace) -> int:
    from compiler.reconcile.apply import ApplyError, apply_changes, wait_for_rollout
    from compiler.reconcile.diff import plan

    status = 0
    for env, context, objects, applysets in _environments(args):
        try:
            cluster = _connect(args, context)
            changes = plan(cluster, objects, applysets, force_conflicts=args.force_conflicts)
        except UsageError:
            raise
        except Exception as error:
            print(f"modelops: error: {env}: {_describe(error)}", file=sys.stderr)
            return 1
        pending = [
            c for c in changes if c.status not in ("unchanged",) and (c.status != "prune" or args.prune)
        ]
        if args.dry_run:
            for change in pending:
                verb = "prune" if change.status == "prune" else "apply"
                print(f"{env}: would {verb} {change.ref} ({change.status})")
            print(f"{env}: {len(pending)} object(s) would change (dry run)")
            continue
        try:
            report = apply_changes(
                cluster,
                changes,
                applysets,
                force_conflicts=args.force_conflicts,
                force=args.force,
                prune=args.prune,
                prune_share=args.prune_max_share,
                allow_mass_delete=args.prune_allow_mass_delete,
            )
        except ApplyError as error:
            print(f"modelops: apply stopped in {env}: {error}", file=sys.stderr)
            if error.report is not None:
                for ref in error.report.applied:
                    print(f"{env}: applied {ref}", file=sys.stderr)
                for ref in error.report.not_applied:
                    print(f"{env}: not applied {ref}", file=sys.stderr)
                print("running apply again converges: it applies only what still differs", file=sys.stderr)
            return 1
        for ref in report.applied:
            print(f"{env}: applied {ref}")
        for ref in report.pruned:
            print(f"{env}: pruned {ref}")
        counts = (
            f"{len(report.applied)} applied, {len(report.unchanged)} unchanged, {len(report.pruned)} pruned"
        )
        print(f"{env}: {counts}")
        if args.wait:
            try:
                health = wait_for_rollout(cluster, objects, args.timeout)
            except ApplyError as error:
                print(f"modelops: {env}: {error}", file=sys.stderr)
                status = 1
                continue
            for model, state in sorted(health.items()):
                print(f"{env}: {model}: {state}")
    return status


def _describe(error: Exception) -> str:
    from compiler.reconcile.diff import api_message

    status = getattr(error, "status", None)
    if status is not None:
        return f"the API server answered {status}: {api_message(error)}"
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return f"cannot reach the API server ({type(error).__name__}: {text[:300]})"
