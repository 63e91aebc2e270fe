"""PromQL and Go-template escaping: spec text can never inject PromQL or template actions."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache

from compiler.spec.types import decimal_text


@lru_cache(maxsize=8192)
def string_literal(value: str) -> str:
    """A double-quoted PromQL string literal for any text (backslash, quote, control chars).
    Remembered: every model's rules quote the same few names hundreds of times."""
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
    return _matchers(tuple(labels.items()), tuple(extra.items()))


@lru_cache(maxsize=8192)
def _matchers(labels: tuple[tuple[str, str], ...], extra: tuple[tuple[str, str], ...]) -> str:
    parts = [f"{name}={string_literal(value)}" for name, value in labels]
    parts += [f"{name}{op_value}" for name, op_value in extra]
    return "{" + ",".join(parts) + "}"


def selector(metric: str, labels: Mapping[str, str], **extra: str) -> str:
    return metric + matchers(labels, **extra)


def go_template_literal(text: str) -> str:
    """Text Prometheus will show as written: alert labels and annotations are Go templates."""
    return text.replace("{{", '{{ "{{" }}')


def number(value: float) -> str:
    """A float as PromQL reads it back, exactly, and without binary noise where it has none.

    15 significant digits when they read back as the same float (every decimal of up to 15
    digits does, so values as people write them print as written: 0.001, 1e-09, 13.44), else
    the shortest text that does: a threshold in a rule is always the spec's value, never a
    neighbour (0.9999999999999999 must not become 1). Display values are computed in decimal.
    """
    text = format(value, ".15g")
    return text if float(text) == value else repr(value)


def percent(ratio: float) -> str:
    """A ratio as a percentage for people, computed in decimal: 0.07 -> 7 (not 7.000000000000001)."""
    return decimal_text(Decimal(repr(ratio)) * 100)
