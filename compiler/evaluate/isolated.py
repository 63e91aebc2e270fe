"""Evaluating an artifact in a process of its own: the artifact comes from a pull request.

The trusted-type list keeps code out of a skops file, not crafted data: scikit-learn trusts
the arrays of the estimators it loads, so a tree whose nodes point past its end crashes the
interpreter (a segmentation fault), one whose nodes point back loops for ever, and an
estimator with an attribute of the wrong type raises whatever its code meets first. In a
forked child each of these ends as an ArtifactError saying what happened, within
SECONDS_PER_VERSION, and the command goes on with the other versions.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection

from compiler.modelio.skops_files import ArtifactError
from compiler.spec.records import EvaluationRecord
from compiler.workers import can_fork

SECONDS_PER_VERSION = 600.0  # fetch, load and score one version: seconds even at the limits

Evaluation = Callable[[], EvaluationRecord]


def isolated(evaluate: Evaluation) -> EvaluationRecord:
    """`evaluate()` in a forked child; its record, or ArtifactError when it fails, dies or
    takes longer than SECONDS_PER_VERSION."""
    seconds = SECONDS_PER_VERSION
    if not can_fork():
        return evaluate()
    context = multiprocessing.get_context("fork")
    receiving, sending = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(evaluate, sending), daemon=True)
    child.start()
    sending.close()
    try:
        if not receiving.poll(seconds):
            child.kill()
            raise ArtifactError(
                f"loading and scoring the artifact took more than {seconds:g} s; a damaged or crafted "
                "file can make a model predict for ever: check where the artifact came from"
            )
        try:
            outcome: EvaluationRecord | ArtifactError = receiving.recv()
        except EOFError:  # the child died without a word
            child.join()
            raise ArtifactError(_died(child.exitcode)) from None
    finally:
        receiving.close()
        child.join()
    if isinstance(outcome, ArtifactError):
        raise outcome
    return outcome


def _child(evaluate: Evaluation, sending: Connection) -> None:
    outcome: EvaluationRecord | ArtifactError
    try:
        outcome = evaluate()
    except ArtifactError as err:
        outcome = err
    except (AttributeError, TypeError, ValueError, IndexError, KeyError, ArithmeticError) as err:
        # The message is scikit-learn's, about the model's arrays and the holdout's values:
        # content of files that are not specs, so only its kind is told.
        outcome = ArtifactError(
            f"the model cannot score the holdout ({type(err).__name__} while loading or scoring): "
            "the artifact is damaged or was not saved by scikit-learn itself"
        )
    sending.send(outcome)
    sending.close()


def _died(exitcode: int | None) -> str:
    how = f"exit {exitcode}"
    if exitcode is not None and exitcode < 0:
        how = f"signal {-exitcode}"
        with contextlib.suppress(ValueError):
            how = f"signal {signal.Signals(-exitcode).name}"
    return (
        f"loading or scoring the artifact crashed the process evaluating it ({how}); a damaged or "
        "crafted file can do that to scikit-learn: check where the artifact came from"
    )
