"""Shadow agreement computed by Prometheus (rollout.strategy: shadow with a candidate).

Each pod counts the rows both models scored, by outcome (agree, disagree, error); the rules
sum them across pods over a window and record the share that did not agree. A candidate that
fails to score a row (outcome error) counts as disagreeing: a candidate that crashes is no
better than one that answers wrongly. Only the spec's candidate is counted (rows of one it
shadowed before are not). The ratio is absent until the window holds
`rollout.shadow.minComparisons` compared rows, so a handful of rows gives no verdict.
A second alert says when the shadow queue drops much of the work (the candidate cannot keep
up), with the same guard on answered requests.

The window is `monitoring.drift.window` (default 1h, also without drift monitoring): both
pool a model's traffic across pods for a statistical verdict, and a team that stretched it
for a quiet model needs the same stretch here. Pure, like rules.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.metrics import contract
from compiler.resolve.resolved import ResolvedModel
from compiler.spec.model import Drift
from compiler.spec.types import Duration
from compiler.targets.prometheus.drift_rules import DRIFT_FOR
from compiler.targets.prometheus.promql import number, percent, selector
from compiler.targets.prometheus.recording import RecordingRule

COMPARISONS_INCREASE = contract.SHADOW_COMPARISONS_INCREASE
DISAGREEMENT_RATIO = contract.SHADOW_DISAGREEMENT_RATIO

SHADOW_FOR = DRIFT_FOR  # a window's verdict holds this long before it alerts, as for drift
# Shadow work dropped (queue full) above this share of answered requests: the candidate falls
# behind the traffic, and its agreement is measured on the quiet part of it only.
DROPPED_SHARE = 0.1
ANSWERED = "200"  # the status of the requests that are shadowed: those the stable model answered


def window(model: ResolvedModel) -> Duration:
    return (model.monitoring.drift or Drift()).window


def shadow_labels(model: ResolvedModel) -> dict[str, str]:
    return {"model": model.name, "namespace": model.namespace, "environment": model.environment}


def _counted(model: ResolvedModel) -> dict[str, str]:
    """The raw series of this model's candidate, from every pod (the runtime's labels)."""
    assert model.shadow is not None
    return {"model": model.name, "namespace": model.namespace, "candidate": model.shadow.version.text}


def recordings(model: ResolvedModel) -> list[RecordingRule]:
    """Compared rows by outcome over the window, and the guarded disagreement ratio; none
    unless a candidate is shadowed."""
    if model.shadow is None:
        return []
    labels = shadow_labels(model)
    comparisons = selector(contract.SHADOW_COMPARISONS.total, _counted(model))
    increase = selector(COMPARISONS_INCREASE, labels)
    bad = selector(COMPARISONS_INCREASE, labels, outcome='!="agree"')
    guard = model.rollout.shadow.minComparisons
    return [
        RecordingRule(
            COMPARISONS_INCREASE,
            f"sum by (outcome) (increase({comparisons}[{window(model).text}]))",
            labels,
        ),
        RecordingRule(
            DISAGREEMENT_RATIO,
            f"(sum({bad}) or vector(0))\n/\nsum({increase})\nand on ()\nsum({increase}) >= {guard}",
            labels,
        ),
    ]


@dataclass(frozen=True)
class ShadowAlert:
    """An alert on the shadow; rules.py turns it into an AlertRule with labels and text."""

    alert: str
    expr: str
    kind: str  # its text and its promtool scenario
    threshold: float
    text: dict[str, str]  # what its summary and description show


def alerts(model: ResolvedModel) -> list[ShadowAlert]:
    if model.shadow is None:
        return []
    shadow = model.rollout.shadow
    span = window(model).text
    stable = model.model.version.text
    text = {
        "candidate": model.shadow.version.text,
        "stable": stable,
        "window": span,
        "comparisons": str(shadow.minComparisons),
    }
    if model.model.task == "classification":
        meaning = f"predicted another class than {stable}"
    else:
        assert shadow.tolerance is not None, "validation requires a tolerance for regressors"
        meaning = f"predicted a value more than {number(shadow.tolerance)} away from {stable}'s"
    ratio = selector(DISAGREEMENT_RATIO, shadow_labels(model))
    scope = {"model": model.name, "namespace": model.namespace}
    dropped = f"sum(increase({selector(contract.SHADOW_DROPPED.total, _counted(model))}[{span}]))"
    requests = selector(contract.REQUESTS.total, scope, code=f'="{ANSWERED}"')
    answered = f"sum(increase({requests}[{span}]))"
    return [
        ShadowAlert(
            alert="ModelShadowDisagreement",
            expr=f"{ratio} > {number(shadow.maxDisagreement)}",
            kind="shadow-disagreement",
            threshold=shadow.maxDisagreement,
            text={**text, "threshold": percent(shadow.maxDisagreement), "meaning": meaning},
        ),
        ShadowAlert(
            alert="ModelShadowDropped",
            expr=(
                f"({dropped} or vector(0))\n/\n{answered}\n> {number(DROPPED_SHARE)}\n"
                f"and on ()\n{answered} >= {shadow.minComparisons}"
            ),
            kind="shadow-dropped",
            threshold=DROPPED_SHARE,
            text={**text, "threshold": percent(DROPPED_SHARE), "queue": str(shadow.queueSize)},
        ),
    ]
