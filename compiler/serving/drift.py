"""PSI per feature over a sliding window of recent inputs, against the evaluation baseline."""

from __future__ import annotations

from collections import deque

from compiler.metrics.drift import bin_index, psi
from compiler.serving.config import RuntimeDrift


class DriftWindow:
    """Bin counts of the last `windowSize` values of each feature; O(1) per value."""

    def __init__(self, drift: RuntimeDrift) -> None:
        self.size = drift.windowSize
        self.edges = {name: b.edges for name, b in drift.baseline.items()}
        self.expected = {name: b.proportions for name, b in drift.baseline.items()}
        self.recent: dict[str, deque[int]] = {name: deque() for name in self.edges}
        self.counts = {name: [0] * (len(edges) + 1) for name, edges in self.edges.items()}

    def add(self, feature: str, values: list[float]) -> float:
        """Record values of one feature and return its PSI over the window."""
        edges, recent, counts = self.edges[feature], self.recent[feature], self.counts[feature]
        for value in values:
            index = bin_index(edges, value)
            recent.append(index)
            counts[index] += 1
            if len(recent) > self.size:
                counts[recent.popleft()] -= 1
        return psi(self.expected[feature], counts)
