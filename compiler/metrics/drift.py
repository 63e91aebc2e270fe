"""Population stability index (PSI) between a baseline and a live distribution, and the bins.

PSI = sum over bins of (live - base) * ln(live / base). Conventions: below 0.1 stable,
0.1 to 0.25 moderate shift, above 0.25 significant. Empty bins are floored at a small share
so one empty bin does not make the index infinite; the recording rules floor the same way
(`clamp_min`), so Prometheus and this module agree on the same counts.

A numeric baseline has inner edges: bins (-inf, e0], (e0, e1], ..., (e_last, inf), labelled
by index. A categorical one (a classifier's classes, a feature with few values) has one bin
per category, labelled by the category, and an "other" bin for values the baseline never saw.
Pure Python: the runtime bins every value with it, the evaluator and the rules use it too.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from compiler.metrics.contract import OTHER_BIN

EMPTY_BIN_SHARE = 1e-4


def bin_index(edges: Sequence[float], value: float) -> int:
    """Bins are (-inf, e0], (e0, e1], ..., (e_last, inf): len(edges) + 1 of them."""
    return bisect.bisect_left(edges, value)


def category_label(value: float) -> str:
    """A category's bin label: integral values without a decimal point (1.0 and True are "1")."""
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def bin_labels(edges: Sequence[float], categories: Sequence[float] | None) -> list[str]:
    """Every bin's label, in the order of the baseline's proportions."""
    if categories is not None:
        return [category_label(c) for c in categories] + [OTHER_BIN]
    return [str(i) for i in range(len(edges) + 1)]


def bin_of(edges: Sequence[float], categories: Sequence[float] | None, value: float) -> int:
    """The index of the bin `value` falls in (the last one, "other", for an unseen category)."""
    if categories is not None:
        index = bisect.bisect_left(categories, value)
        return index if index < len(categories) and categories[index] == value else len(categories)
    return bin_index(edges, value)


def floored(share: float) -> float:
    return max(share, EMPTY_BIN_SHARE)


def psi(baseline: Sequence[float], live_counts: Sequence[float]) -> float:
    total = sum(live_counts)
    if total == 0:
        return 0.0
    index = 0.0
    for expected, count in zip(baseline, live_counts, strict=True):
        e = floored(expected)
        a = floored(count / total)
        index += (a - e) * math.log(a / e)
    return index


MAX_MIN_SAMPLES = 1_000_000_000  # what `drift.minSamples` may say; a tinier warning asks for more


def min_samples(bins: int, warning: float) -> int:
    """The fewest samples for a verdict: PSI under no drift is about (bins - 1) / n, so below
    this n noise alone would reach a tenth of the warning threshold."""
    needed = 10 * (bins - 1) / warning
    return MAX_MIN_SAMPLES if needed >= MAX_MIN_SAMPLES else max(1, math.ceil(needed))
