"""Serialise objects once, deterministically: sorted keys, no wrapping, block style for text.

The bytes are PyYAML's (C dumper, with the representer below) and `json.dumps(indent=2,
sort_keys=True, ensure_ascii=False)`'s. Both spend most of their time in pure Python (PyYAML's
representer and resolver, json's indenting encoder), which made serialisation most of a compile.
So the common shapes are written here directly, and everything else goes to those libraries:
- YAML: block mappings and sequences of str, int, bool, None, float. A scalar's text comes from
  libyaml itself (asked once per distinct value, remembered), except for printable ASCII strings
  that are certainly plain: no indicator, and PyYAML's resolver reads them back as strings. A
  document that shares an object (PyYAML writes an anchor) or holds another type goes to PyYAML.
- JSON: orjson writes the same bytes except for NaN and infinities (it writes null) and floats
  below 1e-4 (its exponent format differs); a document with either goes to json.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import orjson
import yaml

_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[misc,valid-type]
    """Safe dumper that writes multi-line strings (embedded config files) as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value and not any(line != line.rstrip() for line in value.splitlines()):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _represent_str)


def _pyyaml(obj: Any) -> str:
    text: str = yaml.dump(
        obj,
        Dumper=_Dumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=1_000_000,
        explicit_start=False,
    )
    return text


class _Unsupported(Exception):
    """A document the direct writer does not handle: PyYAML writes it."""


# libyaml's analysis of a single-line printable ASCII string, in block context: what keeps it
# from being written plain (then it is single-quoted). The resolver has the last word: a plain
# scalar must also read back as a string.
_INDICATOR = re.compile(r"^[#,\[\]{}&*!|>'\"%@`]|^[-?:](?: |$)|: |:$| #|^(?:---|\.\.\.)|^ | $")
_STR_TAG = "tag:yaml.org,2002:str"
_RESOLVER = yaml.resolver.Resolver()
# What is remembered, per process: texts up to _LONGEST characters (a longer one is mostly one
# model's own, a dashboard's JSON or a query: remembering it would hold every model's), and up to
# _REMEMBERED characters of them in all; then everything is forgotten. Memory stays bounded
# whatever the number of models.
_LONGEST = 256
_REMEMBERED = 4_000_000
_held = [0]  # characters remembered now

_values: dict[str, str] = {}  # single-line string -> its text as a value
_keys: dict[str, str] = {}  # string -> its text as a mapping key
_blocks: dict[tuple[str, int], str] = {}  # (multi-line string, indent) -> its lines
_floats: dict[str, str] = {}  # repr (0.0 and -0.0 are equal keys) -> text


def _remember(memo: dict[Any, str], key: Any, text: str) -> str:
    if len(text) > _LONGEST:
        return text
    if _held[0] > _REMEMBERED:
        for each in (_values, _keys, _blocks, _floats):
            each.clear()
        _held[0] = 0
    _held[0] += 2 * len(text)  # the key is about as long
    memo[key] = text
    return text


def _plain(value: str) -> bool:
    """Whether libyaml writes a printable ASCII line plain (else it single-quotes it)."""
    return (
        value != ""
        and _INDICATOR.search(value) is None
        and _RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) == _STR_TAG  # type: ignore[no-untyped-call]
    )


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _simple(value: str) -> bool:
    """Printable ASCII on one line, short enough never to be wrapped."""
    return value.isascii() and value.isprintable() and len(value) < 100_000


def _key_text(key: str) -> str:
    text = _keys.get(key)
    if text is None:
        if _simple(key) and len(key) <= 128:  # longer keys are not simple keys for libyaml
            text = key if _plain(key) else _quoted(key)
        else:
            probe = _pyyaml({key: 0})  # libyaml decides: quoted, or a complex key ("? ")
            if probe.startswith("? ") or not probe.endswith(": 0\n") or "\n" in probe[:-4]:
                raise _Unsupported
            text = probe[:-4]
        _remember(_keys, key, text)
    return text


def _string_text(value: str, indent: int) -> str:
    """The string as a value at a block indent (the column of its mapping's keys, or of the
    sequence's dashes), with the line break that ends it."""
    text = _values.get(value)
    if text is not None:
        return text
    if _simple(value):
        return _remember(_values, value, (value if _plain(value) else _quoted(value)) + "\n")
    block = _blocks.get((value, indent))
    if block is None:
        literal = _literal(value, indent)
        block = _remember(_blocks, (value, indent), literal if literal is not None else _probe(value, indent))
    return block


_PRINTABLE_ASCII_AND_LINE_BREAK = bytes(range(0x20, 0x7F)) + b"\n"


def _printable_lines(value: str) -> bool:
    """Whether every character but the line breaks is printable to libyaml: for ASCII text (a
    dashboard's JSON) by deleting the printable bytes, a fifth of the time of str.isprintable.
    Python calls printable most characters beyond U+FFFF, which libyaml never does (it
    double-quotes the text); below, Python is the stricter, which only costs a probe."""
    if value.isascii():
        return not value.encode("ascii").translate(None, _PRINTABLE_ASCII_AND_LINE_BREAK)
    text = value.replace("\n", "")
    return text.isprintable() and max(text, default="") <= "\uffff"


def _literal(value: str, indent: int) -> str | None:
    """A literal block ("|") as libyaml writes it, for the text _represent_str gives that style:
    printable lines (no tab), none ending in a space, not starting with a space or a line break
    (an indentation hint), at most one line break at the end (no "+" chomping). None otherwise."""
    if "\n" not in value or value[0] == " " or value[0] == "\n" or value.endswith("\n\n"):
        return None
    if " \n" in value or value.endswith(" ") or not _printable_lines(value):
        return None
    ends = value.endswith("\n")
    text = value[:-1] if ends else value
    margin = " " * (indent + 2)
    if "\n\n" in text:  # an empty line gets no margin
        body = "\n".join([margin + line if line else "" for line in text.split("\n")])
    else:  # every line gets one (a dashboard's JSON, a thousand lines): at C speed
        body = margin + text.replace("\n", "\n" + margin)
    return ("|\n" if ends else "|-\n") + body + "\n"


def _probe(value: object, indent: int) -> str:
    """libyaml's text for a value in a mapping whose keys are at column `indent`."""
    nested: object = value
    for _ in range(indent // 2 + 1):
        nested = {"k": nested}
    probe = _pyyaml(nested)
    prefix = "".join(f"{'  ' * level}k:\n" for level in range(indent // 2)) + " " * indent + "k: "
    if indent % 2 or not probe.startswith(prefix) or probe.endswith("...\n"):
        raise _Unsupported
    return probe[len(prefix) :]


def _scalar(value: object, indent: int) -> str:
    kind = type(value)
    if kind is str:
        return _string_text(value, indent)  # type: ignore[arg-type]
    if kind is bool:
        return "true\n" if value else "false\n"
    if kind is int:
        return f"{value}\n"
    if value is None:
        return "null\n"
    if kind is float:
        key = repr(value)
        text = _floats.get(key)
        return text if text is not None else _remember(_floats, key, _probe(value, 0))
    raise _Unsupported


class _Writer:
    """Block YAML as PyYAML writes it: two-space mappings, sequences not indented under a key.
    A container met twice gets an anchor as PyYAML gives it, in one pass: numbered at the second
    meeting (in the order the keys are sorted), "&idNNN" patched into the text written at the
    first and "*idNNN" written at every later one."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        # container id -> where its first meeting was written: (index in parts, the text around
        # the anchor there); index -1 for the document itself
        self.first: dict[int, tuple[int, str, str]] = {}
        self.anchors: dict[int, str] = {}

    def alias(self, key: int) -> str:
        """The anchor of a container met again, given (and written at its first meeting) now if
        this is its second."""
        anchor = self.anchors.get(key)
        if anchor is None:
            index, before, after = self.first[key]
            if index < 0:
                raise _Unsupported  # a document that contains itself: PyYAML writes it
            anchor = self.anchors[key] = f"id{len(self.anchors) + 1:03d}"
            self.parts[index] = f"{before}&{anchor}{after}"
        return anchor

    def mapping(self, mapping: dict[Any, Any], indent: str, inline: bool = False) -> None:
        """`inline`: the first key follows a "- " already written."""
        parts = self.parts
        first = self.first
        try:
            keys = sorted(mapping)
        except TypeError:
            raise _Unsupported from None
        deeper = indent + "  "
        column = len(indent)
        for key in keys:
            if type(key) is not str:
                raise _Unsupported
            head = _keys.get(key) or _key_text(key)
            if inline:
                inline = False
            else:
                head = indent + head
            value = mapping[key]
            kind = type(value)
            if kind is str:  # the common case first, in one piece
                parts.append(f"{head}: {_values.get(value) or _string_text(value, column)}")
                continue
            parts.append(head)
            if kind is dict or kind is list:
                met = id(value)
                if met in first:
                    parts.append(f": *{self.alias(met)}\n")
                elif not value:
                    empty = " {}\n" if kind is dict else " []\n"
                    first[met] = (len(parts), ": ", empty)
                    parts.append(":" + empty)
                else:
                    first[met] = (len(parts), ": ", "\n")
                    parts.append(":\n")
                    if kind is dict:
                        self.mapping(value, deeper)
                    else:
                        self.sequence(value, indent)
            else:
                parts.append(": ")
                parts.append(_scalar(value, column))

    def sequence(self, items: list[Any], indent: str, inline: bool = False) -> None:
        parts = self.parts
        first = self.first
        deeper = indent + "  "
        for item in items:
            if inline:
                inline = False
                parts.append("- ")
            else:
                parts.append(indent + "- ")
            kind = type(item)
            if kind is dict or kind is list:
                met = id(item)
                if met in first:
                    parts.append(f"*{self.alias(met)}\n")
                elif not item:
                    empty = " {}\n" if kind is dict else " []\n"
                    first[met] = (len(parts), "", empty)
                    parts.append(empty[1:])
                else:
                    first[met] = (len(parts), "", "\n" + deeper)  # the first key moves below an anchor
                    parts.append("")
                    if kind is dict:
                        self.mapping(item, deeper, inline=True)
                    else:
                        self.sequence(item, deeper, inline=True)
            else:
                parts.append(_scalar(item, len(indent)))


def _direct(obj: Any) -> str:
    kind = type(obj)
    if not obj or (kind is not dict and kind is not list):
        raise _Unsupported  # a scalar or an empty document
    writer = _Writer()
    writer.first[id(obj)] = (-1, "", "")
    if kind is dict:
        writer.mapping(obj, "")
    else:
        writer.sequence(obj, "")
    return "".join(writer.parts)


def to_yaml(obj: Any) -> bytes:
    """One YAML document, the same bytes for the same object on every machine."""
    try:
        text = _direct(obj)
    except _Unsupported:
        text = _pyyaml(obj)
    return text.encode("utf-8")


_JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE


_DIGITS = frozenset(b"0123456789")


def _negative_exponent(text: bytes) -> bool:
    """Whether `text` holds a digit then "e-" (a float below 1e-4 as json writes it, or such
    text). Found with bytes.find: a regex starting with a class scans at a tenth of the speed,
    which on a dashboard's JSON cost more than writing it."""
    found = text.find(b"e-")
    while found >= 0:
        if found and text[found - 1] in _DIGITS:
            return True
        found = text.find(b"e-", found + 2)
    return False


def _small_float(text: bytes) -> bool:
    """Whether orjson's `text` may hold a float below 1e-4, which json writes otherwise (1e-05
    where orjson writes 0.00001, or an exponent in another form); such text in a string only
    sends the document the slower way."""
    return b"0.0000" in text or _negative_exponent(text)


def to_json(obj: Any, *, finite: bool = False) -> bytes:
    """Indented, key-sorted JSON and a newline: json.dumps's bytes, mostly written by orjson.
    `finite`: the caller vouches that no float in `obj` is NaN or infinite (data orjson read,
    which has none), so json need not look for them first: two thirds of the cost."""
    if finite:
        with contextlib.suppress(orjson.JSONEncodeError):
            text = orjson.dumps(obj, option=_JSON_OPTIONS)
            if not _small_float(text):
                return text
    try:
        compact = json.dumps(obj, allow_nan=False, ensure_ascii=False)  # C speed: finds NaN
        if not _negative_exponent(compact.encode()):  # no float below 1e-4 (nor such text)
            return orjson.dumps(obj, option=_JSON_OPTIONS)
    except (ValueError, TypeError, orjson.JSONEncodeError):
        pass
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
