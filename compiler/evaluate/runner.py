"""Run each model version's evaluation once, then judge its gates in every environment.

A spec with a candidate has two versions scored on the same holdout: each must meet the
absolute gates, and the candidate the relative ones against the stable version.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from compiler.diagnostics import Diagnostic, Position
from compiler.evaluate.dataset import MAX_DATASET_BYTES, DatasetError, read_holdout
from compiler.evaluate.isolated import isolated
from compiler.evaluate.project_files import read_inside
from compiler.evaluate.scoring import drift_baseline, prediction_baseline, score
from compiler.modelio.fetch import fetch, verify
from compiler.modelio.fits import check_fits_spec
from compiler.modelio.limits import MAX_ARTIFACT_BYTES
from compiler.modelio.skops_files import ArtifactError, load_model
from compiler.resolve.resolved import ResolvedModel
from compiler.spec.catalog import Catalog
from compiler.spec.model import Evaluation, Gate, ModelArtifact, RelativeGate
from compiler.spec.records import EvaluationRecord, RelativeOutcome, write_record
from compiler.spec.yamlsource import SourceDocument


@dataclass(frozen=True)
class GateResult:
    """An absolute gate of one version (the stable's or the candidate's) in one environment."""

    model: str
    environment: str
    version: str
    gate: str
    rule: Gate
    measured: float | None
    candidate: bool = False

    @property
    def passed(self) -> bool:
        return self.rule.passes(self.measured)

    @property
    def bound(self) -> str:
        return self.rule.describe()


@dataclass(frozen=True)
class RelativeResult:
    """A relative gate: the candidate against the stable version on the same holdout."""

    model: str
    environment: str
    gate: str
    rule: RelativeGate
    stable_version: str
    candidate_version: str
    stable: float | None
    candidate: float | None

    @property
    def passed(self) -> bool:
        return self.rule.passes(self.stable, self.candidate)

    @property
    def bound(self) -> str:
        return self.rule.describe()

    @property
    def limit(self) -> float | None:
        return None if self.stable is None else self.rule.limit(self.stable)

    def outcome(self) -> RelativeOutcome:
        return RelativeOutcome(
            stable=self.stable,
            candidate=self.candidate,
            maxDrop=self.rule.maxDrop,
            maxIncrease=self.rule.maxIncrease,
            limit=self.limit,
            passed=self.passed,
        )


@dataclass
class Report:
    gates: list[GateResult] = field(default_factory=list)
    relative: list[RelativeResult] = field(default_factory=list)
    records: list[EvaluationRecord] = field(default_factory=list)
    problems: list[Diagnostic] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]

    @property
    def failed_relative(self) -> list[RelativeResult]:
        return [r for r in self.relative if not r.passed]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.failed_relative and not self.problems


@dataclass(frozen=True)
class Version:
    """One artifact a resolved model has evaluated, and the spec section that names it."""

    artifact: ModelArtifact
    section: Literal["model", "candidate"]


def versions_of(model: ResolvedModel) -> tuple[Version, Version | None]:
    """The stable version (the spec's model) and the candidate, if any, whatever the strategy:
    under rolling and canary the pods serve the candidate, under shadow the stable."""
    if model.stable is not None:
        return Version(model.stable, "model"), Version(model.model, "candidate")
    if model.shadow is not None:
        return Version(model.model, "model"), Version(model.shadow, "candidate")
    return Version(model.model, "model"), None


def _key(model: ResolvedModel, artifact: ModelArtifact) -> tuple[object, ...]:
    evaluation = model.evaluation
    assert evaluation is not None
    return (
        model.name,
        artifact.version.text,
        artifact.uri.text,
        artifact.sha256,
        artifact.task,
        tuple(f.name for f in artifact.features),
        evaluation.dataset,
        evaluation.target,
    )


def evaluate_one(name: str, artifact: ModelArtifact, evaluation: Evaluation, root: Path) -> EvaluationRecord:
    """Fetch, verify, load and score one version; raise ArtifactError with the reason if it cannot."""
    uri = artifact.uri
    data = (
        read_inside(root, uri.text, "artifact", MAX_ARTIFACT_BYTES)
        if uri.scheme == "file"
        else fetch(uri.text, root)
    )
    digest = verify(data, artifact.sha256, uri.text)
    estimator = load_model(data)
    features = [f.name for f in artifact.features]
    check_fits_spec(estimator, artifact.task, features)
    try:
        dataset_bytes = read_inside(root, evaluation.dataset, "dataset", MAX_DATASET_BYTES)
    except ArtifactError as err:
        raise DatasetError(str(err)) from None
    holdout = read_holdout(dataset_bytes, evaluation.dataset, evaluation.target, features)
    if not features and getattr(estimator, "n_features_in_", holdout.x.shape[1]) != holdout.x.shape[1]:
        columns, expected = holdout.x.shape[1], estimator.n_features_in_
        raise DatasetError(f"{evaluation.dataset} has {columns} feature columns, the model takes {expected}")
    try:
        metrics = score(estimator, artifact.task, holdout)
    except ValueError as err:  # e.g. class labels the model has never seen
        # scikit-learn's message quotes the holdout's values: content of a file that is no spec
        raise DatasetError(
            f"scoring {evaluation.dataset} failed ({type(err).__name__}): check that its target column "
            "holds what the model predicts (its classes, or numbers for a regressor)"
        ) from err
    undefined = sorted(name for name, value in metrics.items() if not math.isfinite(value))
    if undefined:  # scikit-learn warns and answers NaN: no gate can pass on that, nor JSON hold it
        raise DatasetError(
            f"{', '.join(undefined)} cannot be measured on {evaluation.dataset} (a holdout of one class, "
            "or too few rows?): give it rows of every class"
        )
    return EvaluationRecord(
        model=name,
        version=artifact.version.text,
        task=artifact.task,
        artifact_sha256=digest,
        dataset=evaluation.dataset,
        dataset_sha256=hashlib.sha256(dataset_bytes).hexdigest(),
        rows=len(holdout.y),
        metrics=metrics,
        baseline=drift_baseline(holdout),
        predictions=prediction_baseline(estimator.predict(holdout.x), artifact.task),
    )


# A candidate's recorded relative gates: by the stable version compared with, then by metric.
_Recorded = dict[str, dict[str, RelativeOutcome]]


def run(
    catalog: Catalog,
    models: list[ResolvedModel],
    *,
    write: bool,
    on_model: Callable[[ResolvedModel, int, int], None] | None = None,
) -> Report:
    """Evaluate and judge every model; `on_model(model, index, total)` is told before each one.

    Each version is evaluated once however many environments run it; records are written
    when every environment has been judged, the candidate's with its relative gates.
    """
    report = Report()
    done: dict[tuple[object, ...], EvaluationRecord | ArtifactError] = {}
    relative: dict[tuple[object, ...], _Recorded] = {}
    sources = {loaded.source: loaded for loaded in catalog.specs}
    for index, model in enumerate(models):
        if on_model is not None:
            on_model(model, index, len(models))
        evaluation = model.evaluation
        if evaluation is None:
            report.skipped.append(f"{model.name} ({model.environment})")
            continue
        records: list[EvaluationRecord] = []
        for version in filter(None, versions_of(model)):
            key = _key(model, version.artifact)
            if key not in done:
                try:
                    one = functools.partial(
                        evaluate_one, model.name, version.artifact, evaluation, catalog.root
                    )
                    done[key] = isolated(one)
                except ArtifactError as err:
                    done[key] = err
                    report.problems.append(_problem(sources[model.source].document, model, version, err))
            outcome = done[key]
            if not isinstance(outcome, EvaluationRecord):
                continue
            records.append(outcome)
            for name, gate in evaluation.gates.absolute().items():
                report.gates.append(
                    GateResult(
                        model.name,
                        model.environment,
                        version.artifact.version.text,
                        name,
                        gate,
                        outcome.metrics.get(name),
                        candidate=version.section == "candidate",
                    )
                )
        candidate = versions_of(model)[1]
        if candidate is None or len(records) < 2:
            continue
        recorded = relative.setdefault(_key(model, candidate.artifact), {})
        for name, rule in evaluation.gates.relative.items():
            result = RelativeResult(
                model.name,
                model.environment,
                name,
                rule,
                records[0].version,
                records[1].version,
                records[0].metrics.get(name),
                records[1].metrics.get(name),
            )
            report.relative.append(result)
            against = recorded.setdefault(result.stable_version, {})
            if name not in against or rule.allowance < _allowance(against[name]):
                against[name] = result.outcome()  # environments that differ: the strictest is kept
    for key, outcome in done.items():
        if isinstance(outcome, EvaluationRecord):
            if relative.get(key):
                outcome = outcome.model_copy(update={"relative": relative[key]})
            report.records.append(outcome)
            if write:
                write_record(catalog.root, outcome)
    return report


def _allowance(outcome: RelativeOutcome) -> float:
    return outcome.maxDrop if outcome.maxDrop is not None else outcome.maxIncrease or 0.0


def _problem(
    document: SourceDocument, model: ResolvedModel, version: Version, error: ArtifactError
) -> Diagnostic:
    """Why a version could not be evaluated, at the spec line to fix."""
    who = (
        model.name
        if version.section == "model"
        else f"{model.name} candidate {version.artifact.version.text}"
    )
    return Diagnostic.at(
        _problem_position(document, model, version, error), f"{who}: {error}", code="evaluate"
    )


def _problem_position(
    document: SourceDocument, model: ResolvedModel, version: Version, error: ArtifactError
) -> Position:
    """Where to point: the dataset field for a holdout problem, else the version's uri (the
    environment overlay's, if that sets it)."""
    path = ("evaluation", "dataset") if isinstance(error, DatasetError) else (version.section, "uri")
    overlay = ("spec", "environments", model.environment, *path)
    return document.positions.values.get(overlay) or document.at(("spec", *path))


def gate_position(catalog: Catalog, model: ResolvedModel, gate: str, *, relative: bool = False) -> Diagnostic:
    """Where a gate is written (its environment overlay, if it sets the gate), for annotations."""
    loaded = next(loaded for loaded in catalog.specs if loaded.source == model.source)
    within = ("gates", "relative", gate) if relative else ("gates", gate)
    overlay = ("spec", "environments", model.environment, "evaluation", *within)
    base = ("spec", "evaluation", *within)
    positions = loaded.document.positions
    position = positions.keys.get(overlay) or loaded.document.key_at(base)
    return Diagnostic.at(position, "")
