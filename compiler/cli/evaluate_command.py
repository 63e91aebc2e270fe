"""`modelops evaluate`: score every model on its holdout set and check its gates.

A spec with a candidate is scored twice, the stable version and the candidate, and the
candidate's relative gates compare the two.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from compiler.cli.progress import Progress
from compiler.cli.report import format_github, format_text, print_diagnostics, use_color
from compiler.diagnostics import Diagnostic
from compiler.evaluate.runner import GateResult, RelativeResult, Report, gate_position, run
from compiler.pipeline import check
from compiler.resolve.resolved import ResolvedModel
from compiler.spec.catalog import Catalog
from compiler.spec.records import EVALUATIONS_DIR


def run_evaluate(args: argparse.Namespace) -> int:
    checked = check(args.paths, args.project, args.environments)
    if not checked.ok or checked.catalog is None:
        print_diagnostics(checked.diagnostics, args.format)
        print("evaluate stopped: fix the spec errors above first", file=sys.stderr)
        return 1
    catalog = checked.catalog
    with Progress("evaluate", args.format) as progress:

        def on_model(model: ResolvedModel, index: int, total: int) -> None:
            progress.show(f"{model.name} ({model.environment})", index + 1, total)

        report = run(catalog, checked.models, write=not args.no_write, on_model=on_model)
    if args.format == "json":
        print(json.dumps(_as_json(report), indent=2, sort_keys=True))
    elif args.format == "github":
        _print_github(report, catalog, checked.models)
    else:
        _print_table(report, args.no_write)
    return 0 if report.ok else 1


def _gate_failure(gate: GateResult) -> str:
    measured = "not measured" if gate.measured is None else f"{gate.measured:g}"
    who = f"{gate.model} candidate {gate.version}" if gate.candidate else gate.model
    return f"{who} ({gate.environment}): gate {gate.gate} needs {gate.bound}, measured {measured}"


def _relative_failure(result: RelativeResult) -> str:
    """One line: what the candidate scored against the stable, and what it needed."""
    head = (
        f"{result.model} ({result.environment}): candidate {result.candidate_version} fails relative gate "
        f"{result.gate} ({result.bound} from {result.stable_version})"
    )
    if result.stable is None or result.candidate is None:
        missing = result.stable_version if result.stable is None else result.candidate_version
        return f"{head}: {result.gate} of {missing} was not measured"
    change, need = ("drop", "at least") if result.rule.maxDrop is not None else ("increase", "at most")
    return (
        f"{head}: {result.gate} {result.candidate:g} against {result.stable:g}, a {change} of "
        f"{abs(result.candidate - result.stable):.4g}; needs {need} {result.limit:g}"
    )


def _print_github(report: Report, catalog: Catalog, models: list[ResolvedModel]) -> None:
    def model_of(name: str, environment: str) -> ResolvedModel:
        return next(m for m in models if m.name == name and m.environment == environment)

    for problem in report.problems:
        print(format_github(problem))
    for gate in report.failed:
        place = gate_position(catalog, model_of(gate.model, gate.environment), gate.gate)
        message = _gate_failure(gate)
        print(format_github(Diagnostic(place.file, place.line, place.column, message, code="gate")))
    for result in report.failed_relative:
        model = model_of(result.model, result.environment)
        place = gate_position(catalog, model, result.gate, relative=True)
        message = _relative_failure(result)
        print(format_github(Diagnostic(place.file, place.line, place.column, message, code="gate")))


def _as_json(report: Report) -> dict[str, object]:
    return {
        "ok": report.ok,
        "gates": [
            {
                "model": g.model,
                "environment": g.environment,
                "version": g.version,
                "candidate": g.candidate,
                "gate": g.gate,
                "min": g.rule.min,
                "max": g.rule.max,
                "measured": g.measured,
                "passed": g.passed,
            }
            for g in report.gates
        ],
        "relative": [
            {
                "model": r.model,
                "environment": r.environment,
                "gate": r.gate,
                "stable_version": r.stable_version,
                "candidate_version": r.candidate_version,
                "maxDrop": r.rule.maxDrop,
                "maxIncrease": r.rule.maxIncrease,
                "stable": r.stable,
                "candidate": r.candidate,
                "limit": r.limit,
                "passed": r.passed,
            }
            for r in report.relative
        ],
        "problems": [{"file": p.file, "line": p.line, "message": p.message} for p in report.problems],
        "records": [r.model_dump(mode="json") for r in report.records],
        "skipped": report.skipped,
    }


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _table(rows: Sequence[tuple[str, ...]], color: bool) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        if color and row[-1] == "FAIL":
            line = f"\033[1;31m{line}\033[0m"
        print(line)


def _print_table(report: Report, no_write: bool) -> None:
    color = use_color(sys.stdout)
    for problem in report.problems:
        print(format_text(problem, color))
    if report.gates:
        rows = [("MODEL", "VERSION", "ENVIRONMENT", "GATE", "REQUIRED", "MEASURED", "RESULT")]
        for g in report.gates:
            verdict = "pass" if g.passed else "FAIL"
            rows.append((g.model, g.version, g.environment, g.gate, g.bound, _number(g.measured), verdict))
        _table(rows, color)
    if report.relative:
        print()
        rows = [("MODEL", "ENVIRONMENT", "RELATIVE GATE", "ALLOWED", "STABLE", "CANDIDATE", "RESULT")]
        for r in report.relative:
            rows.append(
                (
                    r.model,
                    r.environment,
                    r.gate,
                    r.bound,
                    f"{r.stable_version}: {_number(r.stable)}",
                    f"{r.candidate_version}: {_number(r.candidate)}",
                    "pass" if r.passed else "FAIL",
                )
            )
        _table(rows, color)
        for failing in report.failed_relative:
            print(f"FAIL {_relative_failure(failing)}")
    for skipped in report.skipped:
        print(f"no evaluation section: {skipped}")
    judged = len(report.gates) + len(report.relative)
    failed = len(report.failed) + len(report.failed_relative)
    summary = (
        f"{len(report.records)} model versions evaluated: {judged - failed} gates passed, {failed} failed"
    )
    if report.problems:
        summary += f", {len(report.problems)} could not be evaluated"
    if report.records and not no_write:
        summary += f"; records in {EVALUATIONS_DIR}/"
    print(summary)
