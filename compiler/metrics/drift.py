"""Population stability index (PSI) between a baseline and a live distribution.

PSI = sum over bins of (live - base) * ln(live / base). Conventions: below 0.1 stable,
0.1 to 0.25 moderate shift, above 0.25 significant. Empty bins are floored at a small share
so one empty bin does not make the index infinite. Pure Python: the runtime uses it per
request and the evaluator uses it in tests.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

EMPTY_BIN_SHARE = 1e-4


def bin_index(edges: Sequence[float], value: float) -> int:
    """Bins are (-inf, e0], (e0, e1], ..., (e_last, inf): len(edges) + 1 of them."""
    return bisect.bisect_left(edges, value)


def psi(baseline: Sequence[float], live_counts: Sequence[int]) -> float:
    total = sum(live_counts)
    if total == 0:
        return 0.0
    index = 0.0
    for expected, count in zip(baseline, live_counts, strict=True):
        e = max(expected, EMPTY_BIN_SHARE)
        a = max(count / total, EMPTY_BIN_SHARE)
        index += (a - e) * math.log(a / e)
    return index
