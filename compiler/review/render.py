"""Diff reports as text for a terminal, JSON for tools, Markdown for the pull-request comment."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from compiler.review.compare import FileChange
from compiler.review.summary import Breaking, ModelChange

if TYPE_CHECKING:  # jinja2 loads for the Markdown comment alone
    from jinja2 import Template

COMMENT_MARKER = "<!-- modelops-diff -->"


@dataclass
class DiffReport:
    base: str
    head: str
    models: list[ModelChange]
    files: list[FileChange]
    breaking: list[Breaking]
    acknowledged: bool

    def summary_line(self) -> str:
        counts = {
            status: sum(m.status == status for m in self.models) for status in ("changed", "added", "removed")
        }
        return (
            f"{counts['changed']} model environment(s) changed, {counts['added']} added, "
            f"{counts['removed']} removed; {len(self.files)} generated file(s) differ"
        )


def as_text(report: DiffReport) -> str:
    lines = [f"modelops diff {report.base} -> {report.head}"]
    if not report.models and not report.files:
        return lines[0] + ": no change\n"
    for change in report.models:
        lines.append(f"{change.model}/{change.environment}: {change.status}")
        lines += [f"  {detail}" for detail in change.details]
        if change.files:
            lines.append(f"  files: {', '.join(f.rsplit('/', 1)[-1] for f in change.files)}")
    if report.breaking:
        lines.append("breaking changes" + (" (acknowledged):" if report.acknowledged else ":"))
        lines += [f"  {b.model}/{b.environment}: {b.what}" for b in report.breaking]
    other = [f for f in report.files if not any(f.path in m.files for m in report.models)]
    if other:
        lines.append("other generated files:")
        lines += [f"  {f.kind}: {f.path}" for f in other]
    lines.append(report.summary_line())
    return "\n".join(lines) + "\n"


def as_json(report: DiffReport) -> str:
    payload = {
        "base": report.base,
        "head": report.head,
        "changed": bool(report.models or report.files),
        "models": [asdict(m) for m in report.models],
        "files": [{"path": f.path, "kind": f.kind, "fields": f.fields} for f in report.files],
        "breaking": [asdict(b) for b in report.breaking],
        "breaking_acknowledged": report.acknowledged,
    }
    return json.dumps(payload, indent=2, sort_keys=True) + "\n"


@cache
def _template() -> Template:
    from compiler.templating import sandboxed_templates

    source = resources.files("compiler.review").joinpath("templates/diff.md.j2").read_text()
    name = "modelops/diff.md.j2"
    return sandboxed_templates({name: source}, keep_trailing_newline=True)[name]


def as_markdown(report: DiffReport) -> str:
    return _template().render(vars(report), summary_line=report.summary_line())  # every field, by name
