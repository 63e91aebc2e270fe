"""Safe YAML loading that remembers where every node came from.

PyYAML's C parser composes the node graph (fast, and aliases stay shared nodes, so a
"billion laughs" file composes in linear time); we then build plain Python data from the
nodes ourselves so that we can keep positions, reject duplicate keys, keep mapping keys as
the text that was written (`on:` stays "on", not True) and bound how far aliases expand:
in nodes, and in characters, since one alias of a long string costs one node but its whole
length in every file the compiler writes. A document that uses aliases is composed by
PyYAML's Python composer over the C parser's events, so that an alias keeps the place where
it is used and the error names it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from yaml.composer import Composer

from compiler.diagnostics import Diagnostic, DiagnosticError, Position

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 50_000
MAX_DEPTH = 64
# Keys and values, counted after aliases are expanded: the file limit again, twice over.
MAX_EXPANDED_CHARS = 2 * 1024 * 1024

PathKey = tuple[str | int, ...]

if TYPE_CHECKING:
    _Loader = yaml.SafeLoader
    _MixedInComposer = yaml.SafeLoader  # a Composer mixed into a loader: it has the parser's methods
else:
    _Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    _MixedInComposer = Composer
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
    input, not an invalid spec, and the CLI reports it with a different exit code. The file
    is opened without blocking and checked to be a regular file before a byte is read: a
    FIFO named like a spec would otherwise wait forever for a writer.
    """
    name = display if display is not None else str(path)
    return load_bytes(read_source(path, name), name)


def read_source(path: Path, name: str) -> bytes:
    """A spec or project file's bytes, read as load_file reads them (a regular file, within
    the size limit); DiagnosticError or OSError otherwise."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise _fail(
                name,
                1,
                1,
                "not a regular file (a directory, FIFO, socket or device): a spec is a plain YAML file",
                "not-a-file",
            )
        if info.st_size > MAX_FILE_BYTES:
            raise _fail(
                name,
                1,
                1,
                f"file is {info.st_size} bytes, over the {MAX_FILE_BYTES // 1024} KiB limit for a spec; "
                "a model spec is a few kilobytes, so check that this is the right file",
                "file-too-large",
            )
        raw: bytes = handle.read(MAX_FILE_BYTES + 1)
    return raw


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
    # An alias is written with '*': without one, the faster C composer has nothing to lose.
    root = _compose_single(text, name, _AliasKeepingLoader if "*" in text else _Loader)
    if root is None:
        raise _fail(
            name, 1, 1, "file is empty: a spec needs apiVersion, kind, metadata and spec", "empty-file"
        )
    builder = _Builder(name)
    data = builder.build(root, (), 0)
    return SourceDocument(name, data, builder.positions, text)


class _AliasUse(yaml.Node):
    """Where an alias (`*name`) is used, and the anchored node it stands for."""

    def __init__(self, target: yaml.Node, mark: yaml.Mark) -> None:
        super().__init__(target.tag, target, mark, mark)
        self.target = target


class _TooDeep(yaml.MarkedYAMLError):
    """The document nests deeper than MAX_DEPTH (found while composing)."""


class _AliasKeepingComposer(_MixedInComposer):
    """PyYAML's composer, except that an alias becomes an _AliasUse rather than its target."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        # types-PyYAML leaves the parser's methods untyped
        peek_event: Callable[[], yaml.Event] = self.peek_event
        get_event: Callable[[], yaml.Event] = self.get_event
        event = peek_event()
        mark: Any = event.start_mark  # PyYAML's Mark, or libyaml's class of the same shape
        if isinstance(event, yaml.AliasEvent):
            get_event()
            if event.anchor not in self.anchors:
                raise yaml.composer.ComposerError(None, None, f"found undefined alias {event.anchor!r}", mark)
            return _AliasUse(self.anchors[event.anchor], mark)
        # The Python composer recurses per level: stop long before the interpreter's limit.
        if self.depth > MAX_DEPTH:
            raise _TooDeep(None, None, "too deep", mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _AliasKeepingLoader(_AliasKeepingComposer, _Loader):
    def __init__(self, text: str) -> None:
        _Loader.__init__(self, text)
        self.anchors: dict[Any, yaml.Node] = {}


def _compose_single(text: str, name: str, loader_class: type[yaml.SafeLoader]) -> yaml.Node | None:
    loader = loader_class(text)
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
    except _TooDeep as err:
        mark = err.problem_mark
        assert mark is not None  # _TooDeep is always raised with one
        message = f"document is nested more than {MAX_DEPTH} levels deep"
        raise _fail(name, mark.line + 1, mark.column + 1, message, "too-deep") from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        if mark is not None and text[mark.index : mark.index + 1] == "\t":
            what = "tabs are not allowed for indentation; use spaces"
        elif err.context_mark is not None and "duplicate anchor" in (err.context or ""):
            what = (
                f"this anchor name is already defined at line {err.context_mark.line + 1}; "
                "give each anchor ('&name') its own name"
            )
        else:
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
        self.chars_left = MAX_EXPANDED_CHARS
        self.active: set[int] = set()
        self.aliases: list[_AliasUse] = []  # the aliases being expanded, outermost first
        self.scalars = yaml.constructor.SafeConstructor()

    def pos(self, node: yaml.Node) -> Position:
        return Position(self.name, node.start_mark.line + 1, node.start_mark.column + 1)

    def fail(self, node: yaml.Node, message: str, code: str) -> DiagnosticError:
        p = self.pos(node)
        return _fail(self.name, p.line, p.column, message, code)

    def spend(self, node: yaml.Node, text: str) -> None:
        """Count a key or scalar's characters against the expanded-size limit."""
        self.chars_left -= len(text)
        if self.chars_left >= 0:
            return
        limit = f"{MAX_EXPANDED_CHARS // (1024 * 1024)} MiB"
        if not self.aliases:
            raise self.fail(node, f"document holds more than {limit} of keys and values", "too-large")
        raise self.fail(
            self.aliases[0],
            f"with its aliases expanded the document holds more than {limit} of keys and values, "
            "and this alias crosses the limit (one long value repeated by aliases?); a spec is a "
            "few kilobytes, so write the values out or shorten them",
            "alias-bomb",
        )

    def build(self, node: yaml.Node, path: PathKey, depth: int) -> Any:
        if isinstance(node, _AliasUse):
            self.aliases.append(node)
            try:
                value = self.build(node.target, path, depth)
            finally:
                self.aliases.pop()
            self.positions.values[path] = self.pos(node)
            return value
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
            self.spend(node, node.value)
            return self.scalar(node)
        if node.tag not in _COLLECTION_TAGS:
            raise self.fail(
                node, f"unsupported YAML tag {node.tag!r}: specs use plain values only", "yaml-tag"
            )
        if id(node) in self.active:
            raise self.fail(
                self.aliases[-1] if self.aliases else node,
                "an alias refers to a node that contains it (recursive alias)",
                "alias-cycle",
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
        for written_key, value_node in node.value:
            key_node = _unaliased(written_key)
            if key_node.tag == _MERGE_TAG:
                merged.update(self.merge_value(value_node, path, depth))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(
                    written_key, "mapping keys must be plain text, not lists or mappings", "yaml-key"
                )
            key = str(key_node.value)
            self.spend(written_key, key)
            if key in first_seen:
                first = self.pos(first_seen[key])
                raise self.fail(
                    written_key,
                    f"duplicate key {key!r} (first defined at line {first.line}); "
                    "YAML keeps only the last one, so remove one of them",
                    "duplicate-key",
                )
            first_seen[key] = written_key
            self.positions.keys[(*path, key)] = self.pos(written_key)
            result[key] = self.build(value_node, (*path, key), depth + 1)
        for key, value in merged.items():
            result.setdefault(key, value)
        return result

    def merge_value(self, node: yaml.Node, path: PathKey, depth: int) -> dict[str, Any]:
        """Support YAML merge keys (`<<: *defaults`): explicit keys win over merged ones."""
        target = _unaliased(node)
        sources = target.value if isinstance(target, yaml.SequenceNode) else [node]
        merged: dict[str, Any] = {}
        own_position = self.positions.values[path]
        for source in reversed(sources):
            if not isinstance(_unaliased(source), yaml.MappingNode):
                raise self.fail(source, "a merge key ('<<') must refer to a mapping", "yaml-merge")
            merged.update(self.build(source, path, depth + 1))
        self.positions.values[path] = own_position
        return merged


def _unaliased(node: yaml.Node) -> yaml.Node:
    return node.target if isinstance(node, _AliasUse) else node


def _line_col(raw: bytes, offset: int) -> tuple[int, int]:
    before = raw[:offset]
    line = before.count(b"\n") + 1
    column = offset - (before.rfind(b"\n") + 1) + 1
    return line, column


def _fail(name: str, line: int, column: int, message: str, code: str) -> DiagnosticError:
    return DiagnosticError([Diagnostic(name, line, column, message, code=code)])
