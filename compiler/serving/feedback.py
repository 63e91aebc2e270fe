"""Ground truth: predictions wait, under their request id, for the true labels to arrive.

The store is bounded twice: at most `feedback.maxEntries` predictions (a request of n rows
holds n), each for at most `feedback.ttlSeconds`. When it is full the oldest entries make
room; the unexpired ones among them are counted as dropped, so a client that never answers
costs memory up to the bound and a counter, nothing more. Each prediction is judged once:
feedback takes its entry out.

Feedback bodies are client input like inference bodies: anything malformed is InvalidInput
(400) and nothing of it is applied. Ids the pod does not hold are counted, not refused: the
request may have gone to another pod, or the label came too late.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from compiler.serving.inference import InvalidInput, shown

MAX_ID_LENGTH = 128


def request_id(body: dict[str, Any]) -> str:
    """The client's OIP `id`, or a new one when it sends none; InvalidInput for a bad one."""
    given = body.get("id")
    if given is None:
        return uuid.uuid4().hex
    if not isinstance(given, str) or not 0 < len(given) <= MAX_ID_LENGTH:
        raise InvalidInput(
            "schema", f"'id' must be a string of 1 to {MAX_ID_LENGTH} characters, got {shown(given)}"
        )
    return given


@dataclass(frozen=True)
class Entry:
    expires: float
    predictions: tuple[Any, ...]


class PendingPredictions:
    """Predictions by request id, oldest first (with one TTL, also first to expire)."""

    def __init__(
        self, max_entries: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_entries = max_entries
        self.ttl = ttl_seconds
        self.clock = clock
        self.held = 0  # predictions held, the sum of every entry's rows
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, key: str, predictions: list[Any]) -> int:
        """Hold `predictions` under `key`; the number of unexpired predictions dropped for room."""
        rows = len(predictions)
        with self._lock:
            dropped = 0
            if key in self._entries:  # a client reusing an id: the newer prediction counts
                self._remove(key)
            if rows > self.max_entries:
                return dropped + rows  # it could never be held: counted as dropped at once
            now = self.clock()
            while self.held + rows > self.max_entries:
                oldest = next(iter(self._entries))
                if self._entries[oldest].expires > now:
                    dropped += len(self._entries[oldest].predictions)
                self._remove(oldest)
            self._entries[key] = Entry(now + self.ttl, tuple(predictions))
            self.held += rows
            return dropped

    def peek(self, key: str) -> Entry | None:
        with self._lock:
            return self._entries.get(key)

    def take(self, key: str) -> tuple[Any, ...] | str:
        """The predictions held under `key`, taken out; else why not: "unknown" or "expired"."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return "unknown"
            self._remove(key)
            return entry.predictions if entry.expires > self.clock() else "expired"

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key)
        self.held -= len(entry.predictions)


@dataclass(frozen=True)
class Feedback:
    id: str
    labels: list[float]


def parse_feedback(body: Any, task: str, max_rows: int) -> list[Feedback]:
    """`{"feedback": [{"id": "...", "labels": [...]}, ...]}`, one label per row of the request.

    Labels are numbers (a classifier's may be booleans); at most `max_rows` in all.
    """
    if not isinstance(body, dict) or not isinstance(body.get("feedback"), list) or not body["feedback"]:
        raise InvalidInput("schema", "the body must be a JSON object with a non-empty 'feedback' list")
    items: list[Feedback] = []
    total = 0
    for item in body["feedback"]:
        if not isinstance(item, dict) or not isinstance(item.get("labels"), list) or not item["labels"]:
            raise InvalidInput("schema", "every feedback item needs an 'id' and a non-empty 'labels' list")
        if item.get("id") is None:  # null is no id, where an inference request would make one up
            raise InvalidInput("schema", "every feedback item needs an 'id'")
        key = request_id(item)
        total += len(item["labels"])
        if total > max_rows:
            raise InvalidInput("size", f"the feedback holds more than {max_rows} labels (server.maxRows)")
        items.append(Feedback(key, [_label(value, task) for value in item["labels"]]))
    return items


def _label(value: Any, task: str) -> float:
    if isinstance(value, bool) and task == "classification":
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput("type", f"a label must be a number, got {shown(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise InvalidInput("range", f"a label must be a finite number, got {shown(value)}")
    return number
