"""What a reconcile changes, typed: one Action per object (like Flux's ssa changeset), and the
journal of writes that lets a stopped apply say exactly what it did."""

from __future__ import annotations

import difflib
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from compiler.reconcile.objects import Desired, ObjectRef


class Action(enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    RECREATE = "recreate"  # an immutable field changed: delete, then create (needs --force)
    PRUNE = "prune"  # owned, and the output no longer has it (deleted with --prune)
    CONFLICT = "conflict"  # another field manager owns fields we set (needs --force-conflicts)
    UNCHANGED = "unchanged"

    @property
    def done(self) -> str:
        """The past tense, for what apply did: created, updated, recreated, pruned."""
        return _DONE[self]

    @property
    def writes(self) -> bool:
        """Whether apply writes the object (prune is a stage of its own)."""
        return self in (Action.CREATE, Action.UPDATE, Action.RECREATE)


_DONE = {
    Action.CREATE: "created",
    Action.UPDATE: "updated",
    Action.RECREATE: "recreated",
    Action.PRUNE: "pruned",
    Action.CONFLICT: "in conflict",
    Action.UNCHANGED: "unchanged",
}


@dataclass(frozen=True)
class Change:
    """One object: what applying would do to it, and the cleaned live and merged objects."""

    ref: ObjectRef
    action: Action
    model: str
    desired: Desired | None = None  # None for PRUNE
    live: dict[str, Any] | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    details: tuple[str, ...] = ()  # the conflicting fields, or why it must be recreated

    def unified(self) -> str:
        old = _dump(self.before) if self.before is not None else []
        new = _dump(self.after) if self.after is not None else []
        return "\n".join(
            difflib.unified_diff(old, new, f"live/{self.ref}", f"merged/{self.ref}", lineterm="")
        )


def _dump(obj: dict[str, Any]) -> list[str]:
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False).splitlines()


@dataclass(frozen=True)
class Step:
    """One write to the cluster: an object's change, or an ApplySet parent's update."""

    ref: ObjectRef
    action: Action
    parent: bool = False

    def __str__(self) -> str:
        return f"{self.ref} (ApplySet parent)" if self.parent else str(self.ref)


@dataclass(frozen=True)
class Progress:
    """Where a stopped apply was: what it wrote, what it was writing, what it did not reach."""

    done: tuple[Step, ...] = ()
    in_flight: Step | None = None  # sent, no answer: it may or may not have been written
    not_done: tuple[Step, ...] = ()


@dataclass
class Journal:
    """Records each write as it happens, so that a fault at any point has a true Progress."""

    planned: list[Step]
    done: list[Step] = field(default_factory=list)
    in_flight: Step | None = None

    def write(self, step: Step, request: Callable[[], object]) -> None:
        self.in_flight = step
        request()
        self.in_flight = None
        self.done.append(step)

    def progress(self, sent: bool = True) -> Progress:
        """Where the writes stand; `sent=False` when the last request never left (no connection):
        then the step in flight was not written, unless it is a recreate, whose delete may have."""
        in_flight, unsent = self.in_flight, None
        if not sent and in_flight is not None and in_flight.action is not Action.RECREATE:
            in_flight, unsent = None, in_flight
        rest = [s for s in self.planned if s not in self.done and s != in_flight]
        if unsent is not None and unsent not in rest:
            rest.insert(0, unsent)  # an ApplySet parent is not a planned step
        return Progress(tuple(self.done), in_flight, tuple(rest))
