"""Counting input values and predictions in the evaluation baseline's bins.

The runtime only counts; Prometheus sums the counters of every pod over `drift.window` and
computes PSI against the baseline (see compiler/targets/prometheus/drift_rules.py), so each
pod's traffic counts once and a restart loses nothing but the counts of the last scrape.
"""

from __future__ import annotations

from collections.abc import Iterable

from compiler.metrics.drift import bin_labels, bin_of
from compiler.serving.config import RuntimeFeatureBaseline


class Bins:
    """One baseline's bins: the label of each, and the bin of a value."""

    def __init__(self, baseline: RuntimeFeatureBaseline) -> None:
        self.edges = baseline.edges
        self.categories = sorted(baseline.categories) if baseline.categories is not None else None
        self.labels = bin_labels(self.edges, self.categories)

    def count(self, values: Iterable[float]) -> dict[str, int]:
        """How many of `values` fall in each bin (bins with none left out)."""
        counts = [0] * len(self.labels)
        for value in values:
            counts[bin_of(self.edges, self.categories, value)] += 1
        return {label: n for label, n in zip(self.labels, counts, strict=True) if n}
