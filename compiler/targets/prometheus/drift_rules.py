"""Drift computed by Prometheus: live shares per baseline bin over `drift.window`, summed
across every pod, and PSI against the baseline shares written into the rules.

The runtime only counts values per bin (`modelops_feature_bin_total`,
`modelops_prediction_bin_total`); a pod's restart resets its counters, which `increase`
handles, so no traffic is counted twice or lost. PSI has no verdict until the window holds
enough samples: under no drift PSI is about (bins - 1) / n, so a small sample looks like
drift; the PSI series is absent until n reaches `drift.minSamples` (default: where that noise
is a tenth of the warning threshold). Pure, like rules.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.metrics import contract
from compiler.metrics.drift import EMPTY_BIN_SHARE, bin_labels, floored, min_samples
from compiler.resolve.resolved import ResolvedModel
from compiler.spec.records import FeatureBaseline
from compiler.targets.prometheus.promql import number, selector
from compiler.targets.prometheus.recording import RecordingRule

# The series each kind of distribution records (the names live in the metrics contract).
FEATURES = contract.FEATURE_DRIFT
PREDICTIONS = contract.PREDICTION_DRIFT


@dataclass(frozen=True)
class Distribution:
    """One baseline: a feature's (`feature` set) or the predictions' (`feature` None)."""

    names: contract.DriftSeries
    feature: str | None
    bins: tuple[str, ...]
    shares: tuple[float, ...]  # the baseline's, floored as PSI floors them
    min_samples: int

    @property
    def key(self) -> dict[str, str]:
        return {"feature": self.feature} if self.feature is not None else {}


def distributions(model: ResolvedModel) -> list[Distribution]:
    """Every baseline drift is judged against: the spec's features, then the predictions.

    None without `drift.psi` (no thresholds, no verdict) or without an evaluation record.
    """
    drift, record = model.monitoring.drift, model.evaluated
    if drift is None or drift.psi is None or record is None:
        return []
    warning = drift.psi.warning

    def one(names: contract.DriftSeries, feature: str | None, baseline: FeatureBaseline) -> Distribution:
        bins = bin_labels(baseline.edges, baseline.categories)
        guard = drift.minSamples if drift.minSamples is not None else min_samples(len(bins), warning)
        return Distribution(names, feature, tuple(bins), tuple(map(floored, baseline.proportions)), guard)

    found = [
        one(FEATURES, f.name, record.baseline[f.name])
        for f in model.model.features
        if f.name in record.baseline
    ]
    if record.predictions is not None:
        found.append(one(PREDICTIONS, None, record.predictions))
    return found


def drift_labels(model: ResolvedModel) -> dict[str, str]:
    return {"model": model.name, "namespace": model.namespace, "environment": model.environment}


def psi_expr(group: str, live: str, expected: str) -> str:
    """PSI of live shares against expected ones with the same labels (both floored above zero),
    summed over the bins by `group` ("sum " or "sum by (feature) ")."""
    return f"{group}(\n  ({live} - {expected})\n  * ln({live} / {expected})\n)"


def recordings(model: ResolvedModel) -> list[RecordingRule]:
    """The recording rules: per kind of distribution, the window's counts, sample sizes and
    shares; per distribution, its baseline shares and guard; per kind, the guarded PSI."""
    found = distributions(model)
    assert model.monitoring.drift is not None or not found
    labels = drift_labels(model)
    scope = {"model": model.name, "namespace": model.namespace}
    rules: list[RecordingRule] = []
    for names in (FEATURES, PREDICTIONS):
        mine = [d for d in found if d.names is names]
        if not mine:
            continue
        window = model.monitoring.drift.window.text  # type: ignore[union-attr]
        by = ", ".join(names.by)
        by_bin = ", ".join((*names.by, "bin"))
        rules.append(
            RecordingRule(
                names.increase,
                f"sum by ({by_bin}) (increase({selector(names.counter, scope)}[{window}]))",
                labels,
            )
        )
        group = f"sum by ({by}) " if by else "sum "
        rules.append(RecordingRule(names.samples, f"{group}({selector(names.increase, labels)})", labels))
        rules.append(
            RecordingRule(
                names.share,
                f"{selector(names.increase, labels)}\n/ ignoring (bin) group_left\n"
                f"{selector(names.samples, labels)}",
                labels,
            )
        )
        for d in mine:
            rules.extend(
                RecordingRule(names.baseline, f"vector({number(share)})", {**labels, **d.key, "bin": b})
                for b, share in zip(d.bins, d.shares, strict=True)
            )
            rules.append(RecordingRule(names.min_samples, f"vector({d.min_samples})", {**labels, **d.key}))
        live = f"clamp_min({selector(names.share, labels)}, {number(EMPTY_BIN_SHARE)})"
        expected = selector(names.baseline, labels)
        join = f" on ({by})" if by else " on ()"
        rules.append(
            RecordingRule(
                names.psi,
                f"{psi_expr(group, live, expected)}\n"
                f"and{join}\n"
                f"{selector(names.samples, labels)} >= {selector(names.min_samples, labels)}",
                labels,
            )
        )
    return rules


@dataclass(frozen=True)
class DriftAlert:
    """An alert on a recorded PSI; rules.py turns it into an AlertRule with labels and text."""

    alert: str
    expr: str
    severity: str
    kind: str  # its text and its promtool scenario
    threshold: float
    names: contract.DriftSeries


DRIFT_FOR = "15m"


def alerts(model: ResolvedModel) -> list[DriftAlert]:
    found = distributions(model)
    if not found:
        return []
    psi = model.monitoring.drift.psi  # type: ignore[union-attr]
    assert psi is not None
    labels = drift_labels(model)
    result: list[DriftAlert] = []
    for names, title, kind in (
        (FEATURES, "Feature", "drift"),
        (PREDICTIONS, "Prediction", "prediction-drift"),
    ):
        if not any(d.names is names for d in found):
            continue
        for level, threshold in (("warning", psi.warning), ("critical", psi.critical)):
            result.append(
                DriftAlert(
                    alert=f"Model{title}Drift{level.capitalize()}",
                    expr=f"{selector(names.psi, labels)} > {number(threshold)}",
                    severity=level,
                    kind=f"{kind}-{level}",
                    threshold=threshold,
                    names=names,
                )
            )
    return result
