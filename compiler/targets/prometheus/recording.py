"""A Prometheus recording rule: shared by rules.py and the modules it groups (drift, quality),
which it imports, so the class cannot live in rules.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RecordingRule:
    record: str
    expr: str
    labels: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"record": self.record, "expr": self.expr, "labels": self.labels}
