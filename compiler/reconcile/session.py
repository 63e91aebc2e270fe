"""Apply the environments in turn: plan, apply, then (when asked) wait, one after another.

Environments go in the project's order, so production follows staging. A wait that times out
or a rollout that fails leaves the next environment to apply (the failure is reported); any
other stop, such as a fault while applying, ends the run there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from compiler.reconcile.apply import ApplyOptions, ApplyReport, apply_all
from compiler.reconcile.changeset import Change
from compiler.reconcile.client import connect
from compiler.reconcile.diff import plan
from compiler.reconcile.environments import Target
from compiler.reconcile.errors import ReconcileError, Stage
from compiler.reconcile.wait import WORKLOADS, wait_for_rollout


@dataclass(frozen=True)
class Session:
    """How to reach the clusters and what to do in each environment."""

    options: ApplyOptions = field(default_factory=ApplyOptions)
    kubeconfig: str | None = None
    request_timeout: float = 30.0
    dry_run: bool = False  # plan only
    wait: bool = False
    timeout: float = 300.0  # for the wait


@dataclass
class Outcome:
    """What happened in one environment: its plan, what was applied, the rollouts, the stop."""

    environment: str
    changes: list[Change] = field(default_factory=list)
    report: ApplyReport | None = None
    rollouts: dict[str, str] | None = None  # per model, after a wait
    error: ReconcileError | None = None


class Observer(Protocol):
    """Hears progress as it happens (the CLI prints it; a program may log it)."""

    def stage(self, environment: str, stage: Stage, count: int) -> None: ...

    def applied(self, outcome: Outcome) -> None: ...

    def polled(self, environment: str, ready: int, total: int) -> None: ...

    def rollout_changed(self, environment: str, model: str, words: str) -> None: ...


def apply_environments(targets: list[Target], session: Session, observer: Observer) -> Iterator[Outcome]:
    """Each environment's outcome, once it is done; stops after one that failed before its wait."""
    for target in targets:
        outcome = _one(target, session, observer)
        yield outcome
        if outcome.error is not None and outcome.error.stage is not Stage.WAIT:
            return


def _one(target: Target, session: Session, observer: Observer) -> Outcome:
    env = target.environment
    outcome = Outcome(env)

    def stage(stage: Stage, count: int) -> None:
        observer.stage(env, stage, count)

    try:
        cluster = connect(target.context, session.kubeconfig, session.request_timeout)
        stage(Stage.PLAN, len(target.objects))
        outcome.changes = plan(
            cluster, target.objects, target.applysets, force_conflicts=session.options.force_conflicts
        )
        if session.dry_run:
            return outcome
        outcome.report = apply_all(cluster, outcome.changes, target.applysets, session.options, stage)
        observer.applied(outcome)
        if session.wait:
            stage(Stage.WAIT, sum(d.ref.kind in WORKLOADS for d in target.objects))
            outcome.rollouts = wait_for_rollout(
                cluster,
                target.objects,
                session.timeout,
                lambda ready, total: observer.polled(env, ready, total),
                lambda model, words: observer.rollout_changed(env, model, words),
            )
    except ReconcileError as error:
        outcome.error = error
    return outcome
