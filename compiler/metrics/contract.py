"""Names, types, labels and buckets of every series the serving runtime exports.

The runtime registers its metrics from here and the rule and dashboard renderers take
their series names from here, so the two cannot drift apart.
"""

from __future__ import annotations

# Prometheus client defaults, stretched a little at the slow end for model inference.
DEFAULT_LATENCY_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


def latency_buckets(slo_threshold_seconds: float | None) -> tuple[float, ...]:
    """The latency histogram's bucket bounds, always including the SLO threshold.

    A latency SLI counts requests at or under the threshold with the `le` bucket equal to it;
    if no bucket sits exactly there, the SLI can only be approximated.
    """
    bounds = set(DEFAULT_LATENCY_BUCKETS)
    if slo_threshold_seconds is not None:
        bounds.add(round(slo_threshold_seconds, 6))
    return tuple(sorted(bounds))
