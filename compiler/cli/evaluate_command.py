"""`modelops evaluate`: score every model on its holdout set and check its gates."""

from __future__ import annotations

import argparse
import json
import sys

from compiler.cli.progress import Progress
from compiler.cli.report import format_github, format_text, print_diagnostics, use_color
from compiler.diagnostics import Diagnostic
from compiler.evaluate.runner import Report, gate_position, run
from compiler.pipeline import check
from compiler.resolve.resolved import ResolvedModel
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
        for problem in report.problems:
            print(format_github(problem))
        for gate in report.failed:
            model = next(
                m for m in checked.models if m.name == gate.model and m.environment == gate.environment
            )
            place = gate_position(catalog, model, gate.gate)
            measured = "not measured" if gate.measured is None else f"{gate.measured:g}"
            message = (
                f"{gate.model} ({gate.environment}): gate {gate.gate} needs {gate.bound}, measured {measured}"
            )
            print(format_github(Diagnostic(place.file, place.line, place.column, message, code="gate")))
    else:
        _print_table(report, args.no_write)
    return 0 if report.ok else 1


def _as_json(report: Report) -> dict[str, object]:
    return {
        "ok": report.ok,
        "gates": [
            {
                "model": g.model,
                "environment": g.environment,
                "gate": g.gate,
                "min": g.rule.min,
                "max": g.rule.max,
                "measured": g.measured,
                "passed": g.passed,
            }
            for g in report.gates
        ],
        "problems": [{"file": p.file, "line": p.line, "message": p.message} for p in report.problems],
        "records": [r.model_dump(mode="json") for r in report.records],
        "skipped": report.skipped,
    }


def _print_table(report: Report, no_write: bool) -> None:
    color = use_color(sys.stdout)
    for problem in report.problems:
        print(format_text(problem, color))
    if report.gates:
        rows = [("MODEL", "ENVIRONMENT", "GATE", "REQUIRED", "MEASURED", "RESULT")]
        for g in report.gates:
            measured = "-" if g.measured is None else f"{g.measured:.4g}"
            rows.append((g.model, g.environment, g.gate, g.bound, measured, "pass" if g.passed else "FAIL"))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            if color and row[-1] == "FAIL":
                line = f"\033[1;31m{line}\033[0m"
            print(line)
    for skipped in report.skipped:
        print(f"no evaluation section: {skipped}")
    passed = len(report.gates) - len(report.failed)
    summary = (
        f"{len(report.records)} model versions evaluated: {passed} gates passed, {len(report.failed)} failed"
    )
    if report.problems:
        summary += f", {len(report.problems)} could not be evaluated"
    if report.records and not no_write:
        summary += f"; records in {EVALUATIONS_DIR}/"
    print(summary)
