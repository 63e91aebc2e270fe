"""Why a request failed, classified (like Flux's ssa/errors), and the typed errors of each stage.

Every failure of the API server or of the way to it is one of a few faults, each with the
sentence a user needs; anything else is a bug and says so, never "cannot reach the API server".
A stage error carries the Progress of the apply when it stopped.
"""

from __future__ import annotations

import enum
import json
import socket
import ssl
from dataclasses import dataclass
from typing import Any

from compiler.reconcile.changeset import Progress


class Fault(enum.Enum):
    CONFLICT = "conflict"  # 409: another field manager owns the fields
    IMMUTABLE = "immutable"  # 422: a field that cannot change in place changed
    REFUSED = "refused"  # any other answer of the API server
    NOT_SERVED = "not served"  # the cluster has no such kind (a CRD is missing)
    STUCK = "stuck"  # the cluster did not do what it said it would (a finalizer holds an object)
    TIMEOUT = "timeout"  # no answer within --request-timeout
    UNREACHABLE = "unreachable"  # no connection, or it broke
    UNEXPECTED = "unexpected"  # a bug in modelops


@dataclass(frozen=True)
class Failure:
    fault: Fault
    message: str
    sent: bool = True  # False when no connection was made: the request cannot have been written

    def __str__(self) -> str:
        return self.message


class ClusterFailure(Exception):
    """Raised by modelops itself for a fault it detects (a kind not served, a stuck delete)."""

    def __init__(self, fault: Fault, message: str) -> None:
        super().__init__(message)
        self.failure = Failure(fault, message)


def api_message(error: Any) -> str:
    """The API server's own sentence from an error answer (its Status message)."""
    try:
        return str(json.loads(error.body).get("message", error.reason))
    except (ValueError, TypeError, AttributeError):
        return str(getattr(error, "reason", error))


def conflicts_of(error: Any) -> list[str]:
    """Per-field conflicts from a 409 answer to a server-side apply."""
    try:
        causes = json.loads(error.body).get("details", {}).get("causes", [])
    except (ValueError, AttributeError, TypeError):
        return [str(getattr(error, "reason", error))]
    return [f"{c.get('field', '?')}: {c.get('message', '')}" for c in causes] or [str(error.reason)]


def is_immutable(error: Any) -> bool:
    """A 422 because a field that cannot change in place changed (a selector, a clusterIP)."""
    return bool(getattr(error, "status", None) == 422 and "immutable" in str(error.body))


def _first_line(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text.splitlines()[0][:300]}" if text else type(error).__name__


def classify(error: BaseException, timeout: float) -> Failure:
    """The fault behind an exception from the kubernetes client (or from modelops itself)."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError, MaxRetryError, NewConnectionError
    from urllib3.exceptions import TimeoutError as Urllib3Timeout

    if isinstance(error, ClusterFailure):
        return error.failure
    if isinstance(error, ApiException) and error.status:
        if error.status == 409:
            return Failure(Fault.CONFLICT, f"conflict: {'; '.join(conflicts_of(error))}")
        if is_immutable(error):
            return Failure(
                Fault.IMMUTABLE,
                f"a field that cannot change in place changed ({api_message(error)}); re-run with "
                "--force to delete and recreate the object (its pods restart)",
            )
        return Failure(Fault.REFUSED, f"the API server answered {error.status}: {api_message(error)}")
    cause = error.reason if isinstance(error, MaxRetryError) and error.reason is not None else error
    # NewConnectionError is a ConnectTimeoutError for urllib3's history, yet no timeout.
    if isinstance(cause, (Urllib3Timeout, TimeoutError)) and not isinstance(cause, NewConnectionError):
        return Failure(
            Fault.TIMEOUT, f"no answer from the API server within {timeout:g}s (--request-timeout)"
        )
    if isinstance(cause, (HTTPError, ConnectionError, ssl.SSLError, socket.gaierror)):
        sent = not isinstance(cause, (NewConnectionError, ConnectionRefusedError))
        return Failure(Fault.UNREACHABLE, f"cannot reach the API server ({_first_line(cause)})", sent)
    return Failure(
        Fault.UNEXPECTED,
        f"unexpected error ({_first_line(error)}); this is a bug in modelops, run again with "
        "MODELOPS_DEBUG=1 for the traceback",
    )


class Stage(enum.Enum):
    PLAN = "planning"
    APPLY = "applying"
    PRUNE = "pruning"
    PARENTS = "recording ownership"  # the final update of the ApplySet parents
    WAIT = "waiting for rollouts"


class ReconcileError(Exception):
    """A reconcile stopped in `stage`; `str()` says why, `progress` what was written before."""

    def __init__(
        self, stage: Stage, message: str, failure: Failure | None = None, progress: Progress | None = None
    ) -> None:
        super().__init__(message)
        self.stage = stage
        self.failure = failure
        self.progress = progress or Progress()

    @property
    def unexpected(self) -> bool:
        """A bug rather than a fault of the cluster."""
        return self.failure is not None and self.failure.fault is Fault.UNEXPECTED


class PlanError(ReconcileError):
    """Reading the cluster or the dry run failed: nothing was written."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(Stage.PLAN, f"planning failed: {failure}", failure)


class Refused(ReconcileError):
    """A guard stopped the apply before it wrote anything (conflicts, immutable fields, mass prune)."""

    def __init__(self, message: str) -> None:
        super().__init__(Stage.PLAN, message)


class StageError(ReconcileError):
    """A write stage failed part way; `progress` lists what was written and what was not."""

    def __init__(self, stage: Stage, failure: Failure, progress: Progress) -> None:
        where = f"{progress.in_flight}: " if progress.in_flight else ""
        super().__init__(stage, f"{stage.value} failed: {where}{failure}", failure, progress)
