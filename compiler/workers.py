"""Worker processes for the heavy stages (checking specs, rendering models), forked from the
command that runs them.

Forked, not spawned: a worker starts with what the parent has already read (the project, the
evaluation records, a compile's open staging directory) and needs nothing through a pipe but
its tasks. Tasks and results are small: pickled before the fork or by the worker, never the
parent's own objects pickled later, since reading an inherited object writes to its page and
every page written is copied out of the pages the processes share.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import gc
import multiprocessing
import os
import signal
import stat
from collections.abc import Callable, Collection, Generator, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import TypeVar

Task = TypeVar("Task")
Result = TypeVar("Result")

IN_FLIGHT = 2  # tasks queued per worker: enough to keep it busy, few enough to bound memory


def default_jobs() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _start(parent: int, keep: frozenset[int], setup: Callable[[], None]) -> None:
    """A worker dies with the command that started it, and closes the directories it inherited
    (among them the output's lock, which a killed compile must not leave held by its workers)
    except those in `keep`; then `setup` runs (what the worker keeps came with the fork)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    if os.getppid() != parent:
        os._exit(1)
    with contextlib.suppress(OSError):
        for entry in Path("/proc/self/fd").iterdir():
            with contextlib.suppress(OSError, ValueError):
                fd = int(entry.name)
                if fd not in keep and stat.S_ISDIR(os.fstat(fd).st_mode):
                    os.close(fd)
    setup()


def _nothing() -> None:
    pass


def in_workers(
    work: Callable[[Task], Result],
    tasks: Iterable[Task],
    workers: int,
    *,
    setup: Callable[[], None] = _nothing,
    keep: Collection[int] = (),
) -> Generator[Result, None, None]:
    """`work` of each task in `workers` forked processes, results in the order of the tasks, at
    most IN_FLIGHT tasks per worker pending. `work` and `setup` must be module-level functions;
    `setup` runs once in each worker, `keep` are directory descriptors the workers use. Closing
    the generator early stops the workers before it returns: none still runs after an error."""
    pending_tasks = iter(tasks)
    # No collector, here or in the workers, walks the objects there are now while workers run:
    # a walk writes to every object.
    gc.freeze()
    try:
        pool = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_start,
            initargs=(os.getpid(), frozenset(keep), setup),
        )
        try:
            pending: collections.deque[Future[Result]] = collections.deque()
            for task in pending_tasks:
                pending.append(pool.submit(work, task))
                if len(pending) >= workers * IN_FLIGHT:
                    break
            while pending:
                result = pending.popleft().result()
                for task in pending_tasks:
                    pending.append(pool.submit(work, task))
                    break
                yield result
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    finally:
        gc.unfreeze()
