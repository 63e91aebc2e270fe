"""Apply a plan in stages: guards, then apply, prune and the ApplySet parents' final update.

The guards run before anything is written. Every write goes through a Journal, so whatever
stops a stage (an error answer, a timeout, the API server going away, a bug) ends in a
StageError that lists what was written, what was in flight and what was not reached.
Running apply again converges: it plans afresh and writes only what still differs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from compiler.reconcile.changeset import Action, Change, Journal, Step
from compiler.reconcile.client import Cluster
from compiler.reconcile.diff import FIELD_MANAGER, body_for, server_side_apply
from compiler.reconcile.errors import ClusterFailure, Fault, Refused, Stage, StageError, classify
from compiler.reconcile.handover import HANDOVER_MANAGER, handover_body, replicas_to_hand_over
from compiler.reconcile.inventory import ApplySet, recorded_group_kinds
from compiler.reconcile.objects import Desired, ObjectRef
from compiler.reconcile.prune import check_prune_share, prune, prune_order

DEFAULT_PRUNE_SHARE = 0.5
RECREATE_TIMEOUT = 60.0  # seconds for a deleted object to be gone before it is created again


@dataclass(frozen=True)
class ApplyOptions:
    force_conflicts: bool = False  # take over fields another manager owns
    force: bool = False  # delete and recreate objects whose immutable fields changed
    prune: bool = False
    prune_share: float = DEFAULT_PRUNE_SHARE
    allow_mass_delete: bool = False


@dataclass(frozen=True)
class ApplyReport:
    done: tuple[Step, ...]  # objects created, updated, recreated and pruned, in order
    unchanged: tuple[ObjectRef, ...]


StageCallback = Callable[[Stage, int], None]


def _quiet(stage: Stage, count: int) -> None:
    """The default progress callback: say nothing."""


def apply_all(
    cluster: Cluster,
    changes: list[Change],
    applysets: list[ApplySet],
    options: ApplyOptions,
    on_stage: StageCallback = _quiet,
) -> ApplyReport:
    """Write what `changes` (from plan) says differs; raise Refused or StageError."""
    _refuse_unsafe(changes, options)
    prunes = prune_order([c for c in changes if c.action is Action.PRUNE]) if options.prune else []
    if prunes:
        check_prune_share(changes, prunes, options.prune_share, options.allow_mass_delete)
    writes = [c for c in changes if c.action.writes]
    journal = Journal([Step(c.ref, c.action) for c in [*writes, *prunes]])
    by_namespace = {a.namespace: a for a in applysets}
    on_stage(Stage.APPLY, len(writes))
    _run(
        Stage.APPLY,
        cluster,
        journal,
        partial(_apply_stage, cluster, changes, writes, by_namespace, options, journal),
    )
    if prunes:
        on_stage(Stage.PRUNE, len(prunes))
        _run(Stage.PRUNE, cluster, journal, partial(prune, cluster, prunes, journal))
    on_stage(Stage.PARENTS, len(applysets))
    _run(
        Stage.PARENTS,
        cluster,
        journal,
        partial(_final_parents, cluster, changes, applysets, options.prune, journal),
    )
    objects = tuple(step for step in journal.done if not step.parent)
    return ApplyReport(objects, tuple(c.ref for c in changes if c.action is Action.UNCHANGED))


def _run(stage: Stage, cluster: Cluster, journal: Journal, work: Callable[[], None]) -> None:
    """Run one stage; whatever stops it becomes a StageError with the journal's progress."""
    try:
        work()
    except Exception as error:
        failure = classify(error, cluster.timeout)
        raise StageError(stage, failure, journal.progress(failure.sent)) from error


def _refuse_unsafe(changes: list[Change], options: ApplyOptions) -> None:
    """Conflicts and immutable-field changes stop the apply before it writes anything."""
    guards = (
        (
            Action.CONFLICT,
            options.force_conflicts,
            "field conflicts with another manager; nothing was applied. Take the fields over with "
            "--force-conflicts, or remove them from the other manager:",
        ),
        (
            Action.RECREATE,
            options.force,
            "fields that cannot change in place changed; nothing was applied. Re-run with --force to "
            "delete and recreate these objects (their pods restart):",
        ),
    )
    for action, allowed, message in guards:
        found = [f"  {c.ref}: {detail}" for c in changes if c.action is action for detail in c.details]
        if found and not allowed:
            raise Refused("\n".join([message, *found]))


def _kinds_in(changes: list[Change], namespace: str) -> set[str]:
    """The group-kinds of every object the output has in `namespace`."""
    return {c.ref.group_kind for c in changes if c.desired is not None and c.ref.namespace == namespace}


def _write_parent(cluster: Cluster, applyset: ApplySet, kinds: set[str], journal: Journal) -> None:
    parent = Desired(applyset.parent(kinds))
    step = Step(parent.ref, Action.UPDATE, parent=True)
    journal.write(step, partial(server_side_apply, cluster, parent, parent.body, force=True))


def _apply_stage(
    cluster: Cluster,
    changes: list[Change],
    writes: list[Change],
    applysets: dict[str, ApplySet],
    options: ApplyOptions,
    journal: Journal,
) -> None:
    recorded: set[str] = set()
    for change in writes:
        desired = change.desired
        assert desired is not None  # writes have a desired object
        namespace = change.ref.namespace or ""
        if namespace in applysets and namespace not in recorded:
            # Before owning anything in a namespace (once it exists), record every kind we will
            # own there, so that a failed apply can still prune what it created.
            applyset = applysets[namespace]
            on_server = recorded_group_kinds(cluster, applyset)
            wanted = _kinds_in(changes, namespace) | on_server
            if wanted != on_server:
                _write_parent(cluster, applyset, wanted, journal)
            recorded.add(namespace)
        body = body_for(desired, applysets)
        request: Callable[[], object]
        if change.action is Action.RECREATE:
            request = partial(_recreate, cluster, desired, body)
        elif (replicas := replicas_to_hand_over(desired, change.live, FIELD_MANAGER)) is not None:
            request = partial(_handing_over, cluster, desired, body, replicas, options.force_conflicts)
        else:
            request = partial(server_side_apply, cluster, desired, body, force=options.force_conflicts)
        journal.write(Step(change.ref, change.action), request)


def _handing_over(
    cluster: Cluster, desired: Desired, body: dict[str, Any], replicas: int, force: bool
) -> None:
    """Apply a Deployment that stopped setting its replica count, the count kept (see handover)."""
    handover = handover_body(desired, replicas)
    server_side_apply(cluster, desired, handover, force=False, manager=HANDOVER_MANAGER)
    server_side_apply(cluster, desired, body, force=force)


def _final_parents(
    cluster: Cluster, changes: list[Change], applysets: list[ApplySet], pruned: bool, journal: Journal
) -> None:
    """Each parent lists the kinds that still have members (after a prune, only those)."""
    for applyset in applysets:
        on_server = recorded_group_kinds(cluster, applyset)
        kinds = _kinds_in(changes, applyset.namespace) | (set() if pruned else on_server)
        if kinds != on_server:
            _write_parent(cluster, applyset, kinds, journal)


def _recreate(cluster: Cluster, desired: Desired, body: dict[str, Any]) -> None:
    """Delete, wait until the API server has forgotten the object, then apply it anew."""
    from kubernetes.dynamic.exceptions import NotFoundError

    ref = desired.ref
    resource = cluster.resource(desired.api_version, ref.kind)
    resource.delete(name=ref.name, namespace=ref.namespace, body={"propagationPolicy": "Background"})
    deadline = time.monotonic() + RECREATE_TIMEOUT
    while time.monotonic() < deadline:
        try:
            resource.get(name=ref.name, namespace=ref.namespace)
        except NotFoundError:
            server_side_apply(cluster, desired, body, force=True)
            return
        time.sleep(0.2)
    raise ClusterFailure(Fault.STUCK, f"still there {RECREATE_TIMEOUT:g}s after deleting it (a finalizer?)")
