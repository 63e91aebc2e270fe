"""Run each model's evaluation once, then judge its gates in every environment."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from compiler.diagnostics import Diagnostic, Position
from compiler.evaluate.dataset import MAX_DATASET_BYTES, DatasetError, read_holdout
from compiler.evaluate.project_files import read_inside
from compiler.evaluate.scoring import drift_baseline, prediction_baseline, score
from compiler.modelio.fetch import fetch, verify
from compiler.modelio.fits import check_fits_spec
from compiler.modelio.limits import MAX_ARTIFACT_BYTES
from compiler.modelio.skops_files import ArtifactError, load_model
from compiler.resolve.resolved import ResolvedModel
from compiler.spec.catalog import Catalog
from compiler.spec.model import Gate
from compiler.spec.records import EvaluationRecord, write_record
from compiler.spec.yamlsource import SourceDocument


@dataclass(frozen=True)
class GateResult:
    model: str
    environment: str
    gate: str
    rule: Gate
    measured: float | None

    @property
    def passed(self) -> bool:
        return self.rule.passes(self.measured)

    @property
    def bound(self) -> str:
        return self.rule.describe()


@dataclass
class Report:
    gates: list[GateResult] = field(default_factory=list)
    records: list[EvaluationRecord] = field(default_factory=list)
    problems: list[Diagnostic] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.problems


def _key(model: ResolvedModel) -> tuple[object, ...]:
    evaluation = model.evaluation
    assert evaluation is not None
    return (
        model.name,
        model.model.version.text,
        model.model.uri.text,
        model.model.sha256,
        model.model.task,
        tuple(f.name for f in model.model.features),
        evaluation.dataset,
        evaluation.target,
    )


def evaluate_one(model: ResolvedModel, root: Path) -> EvaluationRecord:
    """Fetch, verify, load and score one model; raise ArtifactError with the reason if it cannot."""
    evaluation = model.evaluation
    assert evaluation is not None
    uri = model.model.uri
    artifact = (
        read_inside(root, uri.text, "artifact", MAX_ARTIFACT_BYTES)
        if uri.scheme == "file"
        else fetch(uri.text, root)
    )
    digest = verify(artifact, model.model.sha256, uri.text)
    estimator = load_model(artifact)
    features = [f.name for f in model.model.features]
    check_fits_spec(estimator, model.model.task, features)
    try:
        dataset_bytes = read_inside(root, evaluation.dataset, "dataset", MAX_DATASET_BYTES)
    except ArtifactError as err:
        raise DatasetError(str(err)) from None
    holdout = read_holdout(dataset_bytes, evaluation.dataset, evaluation.target, features)
    if not features and getattr(estimator, "n_features_in_", holdout.x.shape[1]) != holdout.x.shape[1]:
        columns, expected = holdout.x.shape[1], estimator.n_features_in_
        raise DatasetError(f"{evaluation.dataset} has {columns} feature columns, the model takes {expected}")
    try:
        metrics = score(estimator, model.model.task, holdout)
    except ValueError as err:  # e.g. class labels the model has never seen
        raise DatasetError(f"scoring {evaluation.dataset} failed: {err}") from err
    return EvaluationRecord(
        model=model.name,
        version=model.model.version.text,
        task=model.model.task,
        artifact_sha256=digest,
        dataset=evaluation.dataset,
        dataset_sha256=hashlib.sha256(dataset_bytes).hexdigest(),
        rows=len(holdout.y),
        metrics=metrics,
        baseline=drift_baseline(holdout),
        predictions=prediction_baseline(estimator.predict(holdout.x), model.model.task),
    )


def run(
    catalog: Catalog,
    models: list[ResolvedModel],
    *,
    write: bool,
    on_model: Callable[[ResolvedModel, int, int], None] | None = None,
) -> Report:
    """Evaluate and judge every model; `on_model(model, index, total)` is told before each one."""
    report = Report()
    done: dict[tuple[object, ...], EvaluationRecord | ArtifactError] = {}
    sources = {loaded.source: loaded for loaded in catalog.specs}
    for index, model in enumerate(models):
        if on_model is not None:
            on_model(model, index, len(models))
        if model.evaluation is None:
            report.skipped.append(f"{model.name} ({model.environment})")
            continue
        key = _key(model)
        if key not in done:
            try:
                done[key] = evaluate_one(model, catalog.root)
            except ArtifactError as err:
                done[key] = err
            outcome = done[key]
            if isinstance(outcome, EvaluationRecord):
                report.records.append(outcome)
                if write:
                    write_record(catalog.root, outcome)
            else:
                report.problems.append(
                    Diagnostic.at(
                        _problem_position(sources[model.source].document, model, outcome),
                        f"{model.name}: {outcome}",
                        code="evaluate",
                    )
                )
        outcome = done[key]
        if not isinstance(outcome, EvaluationRecord):
            continue
        for name, gate in model.evaluation.gates.items():
            report.gates.append(
                GateResult(model.name, model.environment, name, gate, outcome.metrics.get(name))
            )
    return report


def _problem_position(document: SourceDocument, model: ResolvedModel, error: ArtifactError) -> Position:
    """Where to point: the dataset field for a holdout problem (its environment overlay's, if
    that sets it), else the model's uri."""
    if not isinstance(error, DatasetError):
        return document.at(("spec", "model", "uri"))
    overlay = ("spec", "environments", model.environment, "evaluation", "dataset")
    return document.positions.values.get(overlay) or document.at(("spec", "evaluation", "dataset"))


def gate_position(catalog: Catalog, model: ResolvedModel, gate: str) -> Diagnostic:
    """Where a gate is written (its environment overlay, if it sets the gate), for annotations."""
    loaded = next(loaded for loaded in catalog.specs if loaded.source == model.source)
    overlay = ("spec", "environments", model.environment, "evaluation", "gates", gate)
    base = ("spec", "evaluation", "gates", gate)
    positions = loaded.document.positions
    position = positions.keys.get(overlay) or loaded.document.key_at(base)
    return Diagnostic.at(position, "")
