"""Alert summaries and descriptions: human text, rendered with Jinja2 in a sandbox.

Jinja2 uses `[[ ]]` here so that its syntax never mixes with the Go templates Prometheus
applies afterwards; every value that comes from a spec is escaped for Go templates, so a
spec cannot smuggle a template action into an alert.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Template

from compiler.targets.prometheus.promql import go_template_literal
from compiler.templating import bracket_templates

TEMPLATES: dict[str, tuple[str, str]] = {
    "slo-fast": (
        "[[ model ]] ([[ environment ]]) is burning its [[ slo ]] error budget fast",
        "[[ model ]] in [[ environment ]] has spent more than [[ pages ]] of its [[ slo ]] error "
        "budget. At this rate the [[ objective ]]% [[ slo ]] SLO over [[ period ]] is lost within "
        "days. [[ meaning ]] Owner: [[ team ]].",
    ),
    "slo-slow": (
        "[[ model ]] ([[ environment ]]) is steadily burning its [[ slo ]] error budget",
        "[[ model ]] in [[ environment ]] spends its [[ slo ]] error budget faster than it "
        "refills ([[ pages ]]). The [[ objective ]]% [[ slo ]] SLO over [[ period ]] will be missed "
        "if this continues. [[ meaning ]] Owner: [[ team ]].",
    ),
    "drift-warning": (
        "[[ model ]] ([[ environment ]]): input feature {{ $labels.feature }} is drifting",
        "The population stability index of feature {{ $labels.feature }} over the last [[ window ]] "
        "of traffic (all pods) is above [[ threshold ]] (moderate shift) against the evaluation "
        "baseline. Check upstream data before quality drops. Owner: [[ team ]].",
    ),
    "drift-critical": (
        "[[ model ]] ([[ environment ]]): input feature {{ $labels.feature }} has shifted",
        "The population stability index of feature {{ $labels.feature }} over the last [[ window ]] "
        "of traffic (all pods) is above [[ threshold ]] (significant shift): the model sees data "
        "unlike its training data and its predictions may be wrong. Owner: [[ team ]].",
    ),
    "prediction-drift-warning": (
        "[[ model ]] ([[ environment ]]): its predictions are drifting",
        "The population stability index of [[ model ]]'s predictions over the last [[ window ]] "
        "(all pods) is above [[ threshold ]] (moderate shift) against its predictions on the "
        "holdout set. Owner: [[ team ]].",
    ),
    "prediction-drift-critical": (
        "[[ model ]] ([[ environment ]]): its predictions have shifted",
        "The population stability index of [[ model ]]'s predictions over the last [[ window ]] "
        "(all pods) is above [[ threshold ]] (significant shift) against its predictions on the "
        "holdout set: inputs or the model have changed. Owner: [[ team ]].",
    ),
    "quality-fast": (
        "[[ model ]] ([[ environment ]]) is burning its [[ slo ]] error budget fast",
        "Labelled predictions of [[ model ]] in [[ environment ]] have spent more than [[ pages ]] "
        "of the [[ slo ]] error budget ([[ objective ]] over [[ period ]]): at this rate the "
        "objective is lost within days. Labels arrive about [[ delay ]] late, so the predictions "
        "at fault are older. Owner: [[ team ]].",
    ),
    "quality-slow": (
        "[[ model ]] ([[ environment ]]) is steadily burning its [[ slo ]] error budget",
        "Labelled predictions of [[ model ]] in [[ environment ]] spend the [[ slo ]] error budget "
        "([[ objective ]] over [[ period ]]) faster than it refills ([[ pages ]]). Labels arrive "
        "about [[ delay ]] late. Owner: [[ team ]].",
    ),
    "invalid-input": (
        "[[ model ]] ([[ environment ]]) rejects many requests as invalid input",
        "More than [[ threshold ]]% of requests to [[ model ]] failed feature-schema validation over "
        "10 minutes: a client may be sending the wrong schema. Owner: [[ team ]].",
    ),
    "no-traffic": (
        "[[ model ]] ([[ environment ]]) is running but receives no traffic",
        "Pods of [[ model ]] are up, yet no request has arrived for 30 minutes. Check the "
        "clients, the Service and the NetworkPolicy. Owner: [[ team ]].",
    ),
    "prediction-collapse": (
        "[[ model ]] ([[ environment ]]) predicts a single class",
        "Over 30 minutes more than [[ threshold ]]% of [[ model ]]'s predictions were one class: "
        "the model or its inputs may be broken. Owner: [[ team ]].",
    ),
    "shadow-disagreement": (
        "[[ model ]] ([[ environment ]]): shadow candidate [[ candidate ]] disagrees with [[ stable ]]",
        "Over the last [[ window ]] (all pods, at least [[ comparisons ]] compared rows), the "
        "candidate [[ candidate ]], scoring a copy of [[ model ]]'s traffic, [[ meaning ]] on more "
        "than [[ threshold ]]% of the rows; rows it failed to score count as disagreeing. Users "
        "still get [[ stable ]]'s answers; do not promote the candidate before finding out why. "
        "Owner: [[ team ]].",
    ),
    "shadow-dropped": (
        "[[ model ]] ([[ environment ]]): shadow candidate [[ candidate ]] misses much of the traffic",
        "Over the last [[ window ]] more than [[ threshold ]]% of the requests [[ stable ]] answered "
        "were not shadowed because the shadow queue ([[ queue ]] requests per pod) was full: the "
        "candidate cannot keep up, and its agreement is measured on part of the traffic only. "
        "Users are not affected. Owner: [[ team ]].",
    ),
    "version-mismatch": (
        "[[ model ]] ([[ environment ]]) serves more than one model version",
        "Pods of [[ model ]] have reported different model versions for 30 minutes: a rollout "
        "is stuck or pods run a stale configuration. Owner: [[ team ]].",
    ),
}


@cache
def _templates() -> dict[str, Template]:
    """Compiled once per process (and cached between runs): compiling costs more than rendering.
    One template per kind sets both texts, so that an alert sets up one Jinja context, not two."""
    return bracket_templates(
        {
            f"modelops/alerts/{kind}": (
                f"[% set summary %]{summary}[% endset %][% set description %]{description}[% endset %]"
            )
            for kind, (summary, description) in TEMPLATES.items()
        }
    )


def render(kind: str, context: dict[str, Any]) -> tuple[str, str]:
    """(summary, description) for an alert kind, spec values escaped for Go templates."""
    safe = {k: go_template_literal(v) if isinstance(v, str) else v for k, v in context.items()}
    # A shared context is our fresh dict as is, without Jinja's globals (range, lipsum, ...),
    # which alert texts do not use: merging them in was most of a render's cost.
    texts = vars(_templates()[f"modelops/alerts/{kind}"].make_module(safe, shared=True))
    return texts["summary"], texts["description"]
