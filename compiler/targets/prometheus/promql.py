"""PromQL and Go-template escaping: spec text can never inject PromQL or template actions."""

from __future__ import annotations

from collections.abc import Mapping


def string_literal(value: str) -> str:
    """A double-quoted PromQL string literal for any text (backslash, quote, control chars)."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def matchers(labels: Mapping[str, str], **extra: str) -> str:
    """`{a="x",b="y"}` with every value escaped; `extra` values are written as given (regexes)."""
    parts = [f"{name}={string_literal(value)}" for name, value in labels.items()]
    parts += [f"{name}{op_value}" for name, op_value in extra.items()]
    return "{" + ",".join(parts) + "}"


def selector(metric: str, labels: Mapping[str, str], **extra: str) -> str:
    return metric + matchers(labels, **extra)


def go_template_literal(text: str) -> str:
    """Text Prometheus will show as written: alert labels and annotations are Go templates."""
    return text.replace("{{", '{{ "{{" }}')


def number(value: float) -> str:
    """A float as PromQL reads it, without binary noise (0.0010000000000000009 -> 0.001)."""
    return format(round(value, 10), ".10g")
