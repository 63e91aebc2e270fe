"""Turn pydantic validation errors into located, actionable diagnostics.

Pydantic reports a `loc` path per error; the loader kept the position of every path, so each
error points at the exact line and column. Unknown and misspelled names get a "did you
mean" suggestion computed from the fields the model accepts at that place.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from compiler.diagnostics import Diagnostic
from compiler.spec.types import (
    DNS_LABEL_PATTERN,
    LABEL_KEY_PATTERN,
    LABEL_VALUE_PATTERN,
    PROMETHEUS_LABEL_PATTERN,
    SHA256_PATTERN,
)
from compiler.spec.yamlsource import PathKey, PositionMap


def dotted(path: Sequence[str | int]) -> str:
    """Render a path the way a person reads it: `spec.model.features[2].name`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(document)"


def suggest(word: str, choices: Sequence[str]) -> str | None:
    """The closest known name to a misspelled one, if any is close enough to be a typo."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if matches:
        return matches[0]
    lowered = word.lower()
    for choice in choices:
        if choice.lower() == lowered or (len(word) >= 3 and choice.lower().startswith(lowered)):
            return choice
    return None


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _type_at(model: type[BaseModel], loc: Sequence[str | int]) -> Any:
    """The declared type of the value found at `loc` below `model`, or None if unknown."""
    tp: Any = model
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = next((f for n, f in tp.model_fields.items() if part in (n, f.alias)), None)
            if field is None:
                return None
            tp = field.annotation
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        elif typing.get_origin(tp) is list:
            tp = typing.get_args(tp)[0]
        else:
            return None
    return _unwrap(tp)


def fields_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str] | None:
    """The field names accepted by the mapping found at `loc` below `model`, if it is a model."""
    tp = _type_at(model, loc)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [f.alias or n for n, f in tp.model_fields.items()]
    return None


# Pydantic appends this to the path of a mapping key that failed validation. A user may
# write a key with the same text, so it is a marker only where the path's parent is a dict.
_KEY_MARKER = "[key]"


def _is_key_error(model: type[BaseModel], loc: tuple[str | int, ...], kind: str) -> bool:
    """Whether pydantic reports a bad mapping key (not a value under a key named '[key]')."""
    if len(loc) < 2 or loc[-1] != _KEY_MARKER or kind in ("extra_forbidden", "missing"):
        return False
    return typing.get_origin(_type_at(model, loc[:-2])) is dict


_TYPE_WORDS = {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "a mapping"}


def _described(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return _TYPE_WORDS.get(type(value), f"{value!r}")


def diagnostics_from(
    error: ValidationError,
    model: type[BaseModel],
    positions: PositionMap,
    file: str,
    prefix: PathKey = (),
) -> list[Diagnostic]:
    """One diagnostic per pydantic error, placed at the node the error is about."""
    found: list[Diagnostic] = []
    for err in error.errors(include_url=False):
        loc: tuple[str | int, ...] = tuple(err["loc"])
        kind = err["type"]
        where = prefix + loc
        if _is_key_error(model, loc, kind):
            key_path = prefix + loc[:-1]
            position = positions.key(key_path)
            message = f"{_at(key_path[:-1])}key {key_path[-1]!r}: {_explain(err)}"
        elif kind == "extra_forbidden":
            parent, name = loc[:-1], str(loc[-1])
            position = positions.key(where)
            known = fields_at(model, parent) or []
            place = f"in {dotted(prefix + parent)}" if prefix + parent else "at the top level"
            message = f"unknown field {name!r} {place}"
            guess = suggest(name, known)
            if guess:
                message += f"; did you mean {guess!r}?"
            elif known:
                message += f"; allowed fields: {', '.join(known)}"
        elif kind == "missing":
            parent, name = loc[:-1], str(loc[-1])
            position = positions.value(prefix + parent)
            message = f"{_at(prefix + parent)}missing required field {name!r}"
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            position = positions.value(where)
            message = f"{_at(where)}expected a mapping (key: value pairs), got {_described(err.get('input'))}"
        else:
            position = positions.value(where)
            message = f"{_at(where)}{_explain(err)}"
        if position is None:
            found.append(Diagnostic(file, 1, 1, message))
        else:
            found.append(Diagnostic.at(position, message))
    return found


PATTERN_WORDS = {
    DNS_LABEL_PATTERN: "a DNS-1123 label (lowercase letters, digits and '-', starting and "
    "ending with a letter or digit)",
    SHA256_PATTERN: "a sha256 digest (64 lowercase hexadecimal characters, as sha256sum prints)",
    LABEL_KEY_PATTERN: "a Kubernetes label key (an optional DNS prefix and '/', then at most "
    "63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)",
    LABEL_VALUE_PATTERN: "a Kubernetes label value (at most 63 letters, digits, '-', '_' or '.', "
    "starting and ending with a letter or digit)",
    PROMETHEUS_LABEL_PATTERN: "a Prometheus label name (letters, digits and '_', not starting with a digit)",
}


def _fix_hint(value: Any, pattern: str) -> str:
    """The closest valid DNS label or label value to what was written, as a suggestion."""
    if not isinstance(value, str):
        return ""
    if pattern == DNS_LABEL_PATTERN:
        fixed = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")
    elif pattern == LABEL_VALUE_PATTERN:
        fixed = re.sub(r"[^A-Za-z0-9_.-]+", "-", value)[:63].strip("-_.")
    else:
        return ""
    return f"; did you mean {fixed!r}?" if fixed and fixed != value else ""


def _at(path: PathKey) -> str:
    return f"{dotted(path)}: " if path else ""


def _explain(err: Any) -> str:
    """Pydantic's message, reworded where we can say more (patterns, YAML type surprises)."""
    pattern = err.get("ctx", {}).get("pattern")
    value = err.get("input")
    if err["type"] == "string_pattern_mismatch" and pattern in PATTERN_WORDS:
        return f"{value!r} is not {PATTERN_WORDS[pattern]}" + _fix_hint(value, pattern)
    text = _lower_first(err["msg"]) + _literal_hint(err) + _quote_hint(err)
    if err["type"].endswith("_type") and err["type"] != "string_type":
        text += f" (got {_described(value)})"
    return text


def _lower_first(text: str) -> str:
    """Pydantic's sentences start with a capital; ours continue after a colon."""
    if len(text) > 1 and text[1].islower():
        return text[:1].lower() + text[1:]
    return text


def _literal_hint(err: Any) -> str:
    if err["type"] != "literal_error":
        return ""
    value = err.get("input")
    hint = f" (got {value!r})"
    expected = err.get("ctx", {}).get("expected", "")
    choices = [c.strip().strip("'") for c in expected.replace(" or ", ",").split(",") if c.strip()]
    if isinstance(value, str):
        guess = suggest(value, choices)
        if guess:
            hint += f"; did you mean {guess!r}?"
    return hint


def _quote_hint(err: Any) -> str:
    if err["type"] == "string_type" and isinstance(err.get("input"), bool | int | float):
        return (
            f" (YAML read {err['input']!r} as {_described(err['input'])}; put the value in quotes "
            "to keep it as text)"
        )
    return ""
