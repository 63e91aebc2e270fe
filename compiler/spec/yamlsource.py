"""Safe YAML loading that remembers where every node came from.

PyYAML's C parser composes the node graph (fast, and aliases stay shared nodes, so a
"billion laughs" file composes in linear time); we then build plain Python data from the
nodes ourselves so that we can keep positions, reject duplicate keys, keep mapping keys as
the text that was written (`on:` stays "on", not True) and bound how far aliases expand.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from compiler.diagnostics import Diagnostic, DiagnosticError, Position

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 50_000
MAX_DEPTH = 64

PathKey = tuple[str | int, ...]

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"})


@dataclass
class PositionMap:
    """Where each value (and each mapping key) of a document was written."""

    values: dict[PathKey, Position] = field(default_factory=dict)
    keys: dict[PathKey, Position] = field(default_factory=dict)

    def value(self, path: PathKey) -> Position | None:
        """The position of the value at `path`, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            found = self.values.get(path[:end])
            if found is not None:
                return found
        return None

    def key(self, path: PathKey) -> Position | None:
        """The position of the key that names `path`, falling back to its value's position."""
        return self.keys.get(path) or self.value(path)

    def copy_subtree(self, source: PositionMap, src: PathKey, dst: PathKey, value: Any) -> None:
        """Copy the positions of `value` (found at `src` in `source`) to `dst` in this map."""
        for suffix in _paths_of(value):
            if (pos := source.values.get(src + suffix)) is not None:
                self.values[dst + suffix] = pos
            if (pos := source.keys.get(src + suffix)) is not None:
                self.keys[dst + suffix] = pos


def _paths_of(value: Any, prefix: PathKey = ()) -> Iterator[PathKey]:
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths_of(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths_of(v, (*prefix, i))


@dataclass
class SourceDocument:
    """One YAML document: plain data plus the positions of its nodes."""

    file: str
    data: Any
    positions: PositionMap
    text: str = ""

    def at(self, path: PathKey) -> Position:
        return self.positions.value(path) or Position(self.file, 1, 1)

    def key_at(self, path: PathKey) -> Position:
        return self.positions.key(path) or Position(self.file, 1, 1)


def load_file(path: Path, display: str | None = None) -> SourceDocument:
    """Read and parse one YAML file; raise DiagnosticError with a located message if it is bad.

    OSError (missing file, permission denied) is left to the caller: it is an unreadable
    input, not an invalid spec, and the CLI reports it with a different exit code.
    """
    name = display if display is not None else str(path)
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise _fail(
            name,
            1,
            1,
            f"file is {size} bytes, over the {MAX_FILE_BYTES // 1024} KiB limit for a spec; "
            "a model spec is a few kilobytes, so check that this is the right file",
            "file-too-large",
        )
    with path.open("rb") as handle:
        raw = handle.read(MAX_FILE_BYTES + 1)
    return load_bytes(raw, name)


def load_bytes(raw: bytes, name: str) -> SourceDocument:
    """Parse YAML bytes as one document, with every safety limit applied."""
    if len(raw) > MAX_FILE_BYTES:
        raise _fail(name, 1, 1, f"file is over the {MAX_FILE_BYTES // 1024} KiB limit", "file-too-large")
    if b"\x00" in raw:
        line, column = _line_col(raw, raw.index(b"\x00"))
        raise _fail(
            name,
            line,
            column,
            "file contains NUL bytes: this looks like a binary file, not YAML",
            "binary-file",
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line, column = _line_col(raw, err.start)
        raise _fail(
            name,
            line,
            column,
            f"file is not valid UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start}); save it as UTF-8",
            "encoding",
        ) from None
    return load_text(text, name)


def load_text(text: str, name: str) -> SourceDocument:
    root = _compose_single(text, name)
    if root is None:
        raise _fail(
            name, 1, 1, "file is empty: a spec needs apiVersion, kind, metadata and spec", "empty-file"
        )
    builder = _Builder(name)
    data = builder.build(root, (), 0)
    return SourceDocument(name, data, builder.positions, text)


def _compose_single(text: str, name: str) -> yaml.Node | None:
    loader = _Loader(text)
    try:
        root = loader.get_node() if loader.check_node() else None
        if root is not None and loader.check_node():
            extra = loader.get_node()
            assert extra is not None  # check_node() said there is one
            mark = extra.start_mark
            raise _fail(
                name,
                mark.line + 1,
                mark.column + 1,
                "file holds more than one YAML document (a second one starts here after '---'); "
                "put one model per file",
                "multi-document",
            )
        return root
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = err.problem or "invalid YAML"
        if err.context:
            what = f"{err.context}: {what}"
        raise _fail(name, line, column, f"YAML syntax error: {what}", "yaml-syntax") from None
    except yaml.YAMLError as err:  # reader errors: control characters and the like
        position = getattr(err, "position", None)
        line, column = _line_col(text.encode(), position) if isinstance(position, int) else (1, 1)
        raise _fail(name, line, column, f"YAML error: {err}", "yaml-syntax") from None
    finally:
        loader.dispose()


class _Builder:
    """Turns a composed node graph into plain data, recording positions and enforcing limits."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.positions = PositionMap()
        self.nodes_left = MAX_NODES
        self.active: set[int] = set()
        self.scalars = yaml.constructor.SafeConstructor()

    def pos(self, node: yaml.Node) -> Position:
        return Position(self.name, node.start_mark.line + 1, node.start_mark.column + 1)

    def fail(self, node: yaml.Node, message: str, code: str) -> DiagnosticError:
        p = self.pos(node)
        return _fail(self.name, p.line, p.column, message, code)

    def build(self, node: yaml.Node, path: PathKey, depth: int) -> Any:
        self.nodes_left -= 1
        if self.nodes_left < 0:
            raise self.fail(
                node,
                f"document expands to more than {MAX_NODES} nodes (aliases expanding into each "
                "other, a 'billion laughs' file?); write the values out or simplify the file",
                "alias-bomb",
            )
        if depth > MAX_DEPTH:
            raise self.fail(node, f"document is nested more than {MAX_DEPTH} levels deep", "too-deep")
        self.positions.values[path] = self.pos(node)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if node.tag not in _COLLECTION_TAGS:
            raise self.fail(
                node, f"unsupported YAML tag {node.tag!r}: specs use plain values only", "yaml-tag"
            )
        if id(node) in self.active:
            raise self.fail(
                node, "an alias refers to a node that contains it (recursive alias)", "alias-cycle"
            )
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
            assert isinstance(node, yaml.MappingNode)
            return self.mapping(node, path, depth)
        finally:
            self.active.discard(id(node))

    def scalar(self, node: yaml.ScalarNode) -> Any:
        try:
            return self.scalars.construct_object(node)
        except yaml.constructor.ConstructorError as err:
            raise self.fail(
                node, f"unsupported YAML tag {node.tag!r}: specs use plain values only", "yaml-tag"
            ) from err
        except ValueError as err:  # e.g. a timestamp such as 2024-13-45
            raise self.fail(node, f"cannot read value {node.value!r}: {err}", "yaml-value") from err

    def mapping(self, node: yaml.MappingNode, path: PathKey, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, yaml.Node] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.update(self.merge_value(value_node, path, depth))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(
                    key_node, "mapping keys must be plain text, not lists or mappings", "yaml-key"
                )
            key = str(key_node.value)
            if key in first_seen:
                first = self.pos(first_seen[key])
                raise self.fail(
                    key_node,
                    f"duplicate key {key!r} (first defined at line {first.line}); "
                    "YAML keeps only the last one, so remove one of them",
                    "duplicate-key",
                )
            first_seen[key] = key_node
            self.positions.keys[(*path, key)] = self.pos(key_node)
            result[key] = self.build(value_node, (*path, key), depth + 1)
        for key, value in merged.items():
            result.setdefault(key, value)
        return result

    def merge_value(self, node: yaml.Node, path: PathKey, depth: int) -> dict[str, Any]:
        """Support YAML merge keys (`<<: *defaults`): explicit keys win over merged ones."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[str, Any] = {}
        own_position = self.positions.values[path]
        for source in reversed(sources):
            if not isinstance(source, yaml.MappingNode):
                raise self.fail(source, "a merge key ('<<') must refer to a mapping", "yaml-merge")
            merged.update(self.build(source, path, depth + 1))
        self.positions.values[path] = own_position
        return merged


def _line_col(raw: bytes, offset: int) -> tuple[int, int]:
    before = raw[:offset]
    line = before.count(b"\n") + 1
    column = offset - (before.rfind(b"\n") + 1) + 1
    return line, column


def _fail(name: str, line: int, column: int, message: str, code: str) -> DiagnosticError:
    return DiagnosticError([Diagnostic(name, line, column, message, code=code)])
