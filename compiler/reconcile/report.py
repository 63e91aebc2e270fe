"""Words for what a reconcile found and did: the diff per model, apply's results and its faults."""

from __future__ import annotations

import json

from compiler.reconcile.changeset import Action, Change, Step
from compiler.reconcile.errors import PlanError, ReconcileError, Stage, StageError

# The summary line of each model always counts these; the others only when there are some.
ALWAYS_COUNTED = (Action.UPDATE, Action.CREATE, Action.PRUNE)
CONVERGES = "running apply again converges: it plans afresh and writes only what still differs"


def _colour(line: str, color: bool) -> str:
    if color and line.startswith("+") and not line.startswith("+++"):
        return f"\033[32m{line}\033[0m"
    if color and line.startswith("-") and not line.startswith("---"):
        return f"\033[31m{line}\033[0m"
    return line


def model_summary(model: str, environment: str, changes: list[Change]) -> str:
    """`credit-default/staging: 1 to update, 0 to create, 0 to prune, 1 to recreate`."""
    counts = {action: sum(c.action is action for c in changes) for action in Action}
    words = [f"{counts[a]} to {a.value}" for a in ALWAYS_COUNTED]
    words += [f"{counts[Action.RECREATE]} to recreate"] if counts[Action.RECREATE] else []
    words += [f"{counts[Action.CONFLICT]} in conflict"] if counts[Action.CONFLICT] else []
    return f"{model}/{environment}: {', '.join(words)}"


def diff_text(results: list[tuple[str, list[Change]]], color: bool) -> list[str]:
    """Per environment and model: each object that would change, with its unified diff, then
    the model's summary line."""
    lines: list[str] = []
    for environment, changes in results:
        for model in sorted({c.model for c in changes}):
            mine = [c for c in changes if c.model == model]
            for change in mine:
                if change.action is Action.UNCHANGED:
                    continue
                lines.append(f"{change.action.value}: {change.ref}")
                label = "conflict" if change.action is Action.CONFLICT else "immutable:"
                lines += [f"  {label} {detail}" for detail in change.details]
                lines += [_colour(line, color) for line in change.unified().splitlines()]
            lines.append(model_summary(model, environment, mine))
    return lines


def diff_json(results: list[tuple[str, list[Change]]]) -> str:
    payload = [
        {
            "environment": environment,
            "ref": str(c.ref),
            "model": c.model,
            "action": c.action.value,
            "diff": c.unified(),
            "details": list(c.details),
        }
        for environment, changes in results
        for c in changes
        if c.action is not Action.UNCHANGED
    ]
    return json.dumps(payload, indent=2)


def stage_line(environment: str, stage: Stage, count: int) -> str:
    what = f"{count} ApplySet parent(s)" if stage is Stage.PARENTS else f"{count} object(s)"
    return f"{environment}: {stage.value}: {what}"


def dry_run_lines(environment: str, changes: list[Change], prune: bool) -> list[str]:
    pending = pending_steps(changes, prune)
    lines = [f"{environment}: would {s.action.value} {s.ref}" for s in pending]
    return [*lines, f"{environment}: {len(pending)} object(s) would change (dry run)"]


def done_lines(environment: str, done: tuple[Step, ...], unchanged: int) -> list[str]:
    counts = {a: sum(s.action is a for s in done) for a in Action}
    lines = [f"{environment}: {step.action.done} {step.ref}" for step in done]
    summary = ", ".join(
        f"{counts[a]} {a.done}" for a in (Action.CREATE, Action.UPDATE, Action.RECREATE, Action.PRUNE)
    )
    return [*lines, f"{environment}: {summary}, {unchanged} unchanged"]


def _not_done(step: Step) -> str:
    return "not pruned" if step.action is Action.PRUNE else "not applied"


def error_lines(environment: str, error: ReconcileError) -> list[str]:
    """Why it stopped, then for a fault: what was written, what may have been, what was not."""
    lines = [f"modelops: error: {environment}: {error}"]
    if not isinstance(error, (PlanError, StageError)):
        return lines  # a guard or a rollout: nothing to add
    progress = error.progress
    lines += [f"{environment}: {step.action.done} {step}" for step in progress.done]
    if progress.in_flight is not None:
        step = progress.in_flight
        maybe = "deleted" if step.action is Action.PRUNE else "written"
        lines.append(f"{environment}: unknown (may have been {maybe}): {step.action.value} {step}")
    lines += [f"{environment}: {_not_done(step)}: {step.action.value} {step}" for step in progress.not_done]
    if not progress.done and progress.in_flight is None:
        lines.append(f"{environment}: nothing was written")
    return [*lines, CONVERGES]


def _step_json(step: Step) -> dict[str, object]:
    return {"action": step.action.value, "ref": str(step.ref), "parent": step.parent}


def apply_json(
    environment: str,
    *,
    dry_run: bool,
    steps: list[Step],
    unchanged: int,
    rollouts: dict[str, str] | None = None,
    error: ReconcileError | None = None,
) -> dict[str, object]:
    """One environment of `apply --format json` (docs/json/apply.schema.json): what it did, or
    would do with --dry-run, and where it stopped."""
    stopped = None
    if error is not None:
        progress = error.progress
        stopped = {
            "stage": error.stage.value,
            "message": str(error),
            "written": [_step_json(s) for s in progress.done],
            "unknown": None if progress.in_flight is None else _step_json(progress.in_flight),
            "not_written": [_step_json(s) for s in progress.not_done],
        }
    return {
        "environment": environment,
        "dry_run": dry_run,
        "changes": [_step_json(s) for s in steps],
        "unchanged": unchanged,
        "rollouts": rollouts,
        "error": stopped,
    }


def pending_steps(changes: list[Change], prune: bool) -> list[Step]:
    """What a dry run would write: every change that writes, and the prunes when asked."""
    return [Step(c.ref, c.action) for c in changes if c.action.writes or (prune and c.action is Action.PRUNE)]
