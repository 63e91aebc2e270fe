"""Fuzzing: whatever a spec or project file holds, `check` answers with located diagnostics
and, when it finds no error, the renderers write valid output. Never an exception.

Inputs: YAML-ish text built from tokens, arbitrary documents, and the bundled specs and
project file mutated (keys dropped, renamed, retyped, nested, shared through aliases; bytes
inserted, deleted, repeated). Each property runs twice: a few examples in `make test`, and
10,000 examples in all under the `fuzz` mark (`make fuzz`).
"""

from __future__ import annotations

import copy
import datetime
import json
import re
import shutil
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from compiler.compile import render_models
from compiler.pipeline import check
from compiler.spec.model import ModelSpec
from compiler.spec.project import Project
from compiler.spec.types import LABEL_KEY_PATTERN, LABEL_VALUE_PATTERN
from compiler.stamp import Stamp
from tests.conftest import REPO, SPECS

SPEC_FILES = ("credit-default.yaml", "loan-risk-score.yaml")
SPEC_TEXTS = {name: (SPECS / name).read_bytes() for name in SPEC_FILES}
PROJECT_TEXT = (SPECS / "modelops.yaml").read_bytes()
SPEC_DATA = [yaml.safe_load(text) for text in SPEC_TEXTS.values()]
PROJECT_DATA = yaml.safe_load(PROJECT_TEXT)

# Examples per property: (in `make test`, under `make fuzz`); the fuzz column sums to 10,000.
EXAMPLES = {
    "text": (40, 2_000),
    "documents": (40, 2_000),
    "specs": (60, 3_000),
    "projects": (30, 1_500),
    "bytes": (30, 1_500),
}


def runs(kind: str) -> Any:
    """Parametrize a property over its quick run and its long, fuzz-marked run."""
    quick, full = EXAMPLES[kind]
    return pytest.mark.parametrize(
        "examples", [pytest.param(quick, id="quick"), pytest.param(full, id="fuzz", marks=pytest.mark.fuzz)]
    )


def fuzz_settings(examples: int) -> Callable[[Any], Any]:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- the harness ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the bundled project: artifacts, holdouts and records, so checks go all the way."""
    root = tmp_path_factory.mktemp("fuzz") / "repo"
    (root / "specs").mkdir(parents=True)
    for directory in ("models", "data", "evaluations"):
        shutil.copytree(REPO / directory, root / directory)
    return root


_LABEL_KEY = re.compile(LABEL_KEY_PATTERN)
_LABEL_VALUE = re.compile(LABEL_VALUE_PATTERN)


def _kubernetes_objects(files: dict[str, bytes]) -> Iterator[dict[str, Any]]:
    for path, content in files.items():
        if path.endswith((".yaml", ".yml")):
            for document in yaml.load_all(content, Loader=yaml.CSafeLoader):
                if isinstance(document, dict) and "kind" in document and "metadata" in document:
                    yield document
        elif path.endswith(".json"):
            json.loads(content)


def run_tool(root: Path, spec: bytes | None = None, project: bytes | None = None) -> None:
    """check one spec with one project file; render what passes. Raises only on a bug."""
    spec_file, project_file = root / "specs" / "fuzz.yaml", root / "specs" / "modelops.yaml"
    spec_file.write_bytes(SPEC_TEXTS[SPEC_FILES[0]] if spec is None else spec)
    project_file.write_bytes(PROJECT_TEXT if project is None else project)
    checked = check([spec_file], project_file)
    for d in checked.diagnostics:
        assert d.line >= 1 and d.column >= 1 and d.message.strip(), d
    if not checked.ok:
        assert any(d.is_error for d in checked.diagnostics)
        return
    assert checked.catalog is not None
    files = render_models(checked.models, checked.catalog.project, Stamp())
    for obj in _kubernetes_objects(files):  # every file parses; labels are what Kubernetes accepts
        for key, value in (obj["metadata"].get("labels") or {}).items():
            assert _LABEL_KEY.match(key) and len(key.rpartition("/")[0]) <= 253, key
            assert isinstance(value, str) and _LABEL_VALUE.match(value), (key, value)


# --- strategies -------------------------------------------------------------------------


def _field_names(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> set[str]:
    """Every field name (and alias) below a model: keys that get past the first check."""
    seen = seen if seen is not None else set()
    if model in seen:
        return set()
    seen.add(model)
    names: set[str] = set()
    for name, field in model.model_fields.items():
        names |= {name, field.alias or name}
        pending = [field.annotation]
        while pending:
            tp = pending.pop()
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                names |= _field_names(tp, seen)
            pending.extend(typing.get_args(tp))
    return names


def _scalars_of(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        yield from value
        for item in value.values():
            yield from _scalars_of(item)
    elif isinstance(value, list):
        for item in value:
            yield from _scalars_of(item)
    else:
        yield value


FIELD_NAMES = sorted(_field_names(ModelSpec) | _field_names(Project))
KNOWN_VALUES = sorted({repr(v): v for d in [*SPEC_DATA, PROJECT_DATA] for v in _scalars_of(d)}.items())
# fmt: off
ODD_TEXT = [
    "", " ", "\t", "[key]", "<<", "on", "no", "~", "null", "-1", "0", "0x1f", "1e308", ".nan", "-.inf",
    "100", "100%", "99.99999999999", "0.0000001", "1h30m", "30m1h", "0s", "250ms", "9999999999999999999y",
    "512Mi", "-1Gi", "1.4.0", "01.2.3", "1.4", "2024-13-45", "2024-01-01", "sklearn", "pytorch",
    "classification", "regression", "builtin", "kserve", "../../etc/passwd", "/etc/passwd",
    "pvc://../../etc/passwd", "s3://", "https://", "file:///etc/passwd", "C:\\x", "{{ $value }}",
    '{{ env "HOME" }}', "${HOME}", "x\ny", "é", "\u2028", "\u202e", "data.science_team-1", "Team",
    "a" * 64, "b" * 300, "c" * 5000, 'x"} or vector(1) #', "`", "%", "@", "*", "&", "!", "|",
]
# fmt: on
ODD_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(ODD_TEXT),
    st.sampled_from([v for _, v in KNOWN_VALUES]),
    st.text(max_size=30),
    st.dates(min_value=datetime.date(1, 1, 1)),
    st.binary(max_size=8),
)
KEYS = st.one_of(
    st.sampled_from(FIELD_NAMES),
    st.sampled_from(["[key]", "[key]x", "<<", "on", "", " ", "apiversion", "Kind", "labelz", "staging"]),
    st.text(max_size=12),
    st.integers(-3, 3),
    st.booleans(),
    st.none(),
)
TREES = st.recursive(
    ODD_SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(KEYS, children, max_size=5)),
    max_leaves=25,
)


@st.composite
def headed_documents(draw: st.DrawFn) -> Any:
    """Arbitrary trees, often under a right header so that validation goes past it."""
    tree = draw(TREES)
    if isinstance(tree, dict) and draw(st.booleans()):
        kind = draw(st.sampled_from(["Model", "Project"]))
        return {"apiVersion": "modelops.dev/v1alpha1", "kind": kind, **tree}
    return tree


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


MUTATIONS = ["drop", "rename", "retype", "nest", "alias", "add", "copy", "grow", "replace-tree"]


def mutate(draw: st.DrawFn, doc: Any) -> Any:
    """Apply one to four structural mutations to a document (in place); return it."""
    holder = {"root": doc}
    for _ in range(draw(st.integers(1, 4))):
        paths = [("root", *p) for p in _paths(holder["root"])]
        path = draw(st.sampled_from(paths))
        parent, last = _get(holder, path[:-1]), path[-1]
        value = parent[last]
        action = draw(st.sampled_from(MUTATIONS))
        if action == "drop" and len(path) > 1:
            del parent[last]
        elif action == "rename" and isinstance(parent, dict) and len(path) > 1:
            parent[draw(KEYS)] = parent.pop(last)
        elif action == "retype":
            parent[last] = draw(ODD_SCALARS)
        elif action == "nest":
            parent[last] = draw(st.sampled_from([[value], {draw(KEYS): value}]))
        elif action == "alias" and isinstance(value, dict | list):
            # the same object in two places: safe_dump writes an anchor and an alias
            other = draw(st.sampled_from(paths))
            other_parent = _get(holder, other[:-1])
            if not _reaches(value, other_parent):  # no cycles: the document stays a tree to walk
                other_parent[other[-1]] = value
        elif action == "add" and isinstance(value, dict):
            value[draw(KEYS)] = draw(st.one_of(ODD_SCALARS, TREES))
        elif action == "copy":
            source = _get(holder, draw(st.sampled_from(paths)))
            parent[last] = copy.deepcopy(source)
        elif action == "grow":
            count = draw(st.sampled_from([2, 65, 300]))
            if isinstance(value, dict):
                value.update({f"k{i}": draw(ODD_SCALARS) for i in range(count)})
            else:
                parent[last] = [copy.deepcopy(value) for _ in range(count)]
        elif action == "replace-tree":
            parent[last] = draw(TREES)
    return holder["root"]


def _reaches(value: Any, target: Any) -> bool:
    """Whether `target` is `value` or inside it."""
    if value is target:
        return True
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return any(_reaches(child, target) for child in children)


def dump(draw: st.DrawFn, doc: Any) -> bytes:
    text = yaml.safe_dump(
        doc,
        sort_keys=False,  # keys of mixed types do not sort
        default_flow_style=draw(st.sampled_from([False, None, True])),
        allow_unicode=draw(st.booleans()),
        width=draw(st.sampled_from([40, 80, 10_000])),
    )
    return text.encode()


@st.composite
def mutated_specs(draw: st.DrawFn) -> bytes:
    return dump(draw, mutate(draw, copy.deepcopy(draw(st.sampled_from(SPEC_DATA)))))


@st.composite
def mutated_projects(draw: st.DrawFn) -> bytes:
    return dump(draw, mutate(draw, copy.deepcopy(PROJECT_DATA)))


INDENTS = ["", "", "  ", "    ", "      ", " ", "\t", "  \t", "\t  "]
KEY_TOKENS = [*FIELD_NAMES, "[key]", "<<", "? ", "- ", "-", "&a x", "*a", "!!str x", "'q'", '"q"', "on"]
# fmt: off
VALUE_TOKENS = [
    *ODD_TEXT[:60], "&a", "&a [1, 2]", "&a {x: 1}", "*a", "*b", "[", "]", "{", "}", "[*a, *a]", "{<<: *a}",
    "|", ">-", "!!python/name:os.system", "!!binary aGk=", "!custom", "!!int x", "!!float", "!!map {}",
    "? x", "- x", "'unclosed", '"unclosed', "# comment", "---", "...", "%YAML 1.1", "\\", "\x07", "\ufeff",
]
# fmt: on


@st.composite
def yaml_texts(draw: st.DrawFn) -> bytes:
    """Lines of YAML tokens: field names, values, indicators, anchors, tags and tabs."""
    lines = []
    if draw(st.booleans()):
        lines += ["apiVersion: modelops.dev/v1alpha1", f"kind: {draw(st.sampled_from(['Model', 'Project']))}"]
    for _ in range(draw(st.integers(0, 25))):
        indent = draw(st.sampled_from(INDENTS))
        key = draw(st.sampled_from(KEY_TOKENS))
        value = draw(st.one_of(st.sampled_from(VALUE_TOKENS), st.just(""), st.text(max_size=10)))
        separator = draw(st.sampled_from([": ", ":", " : ", ":\t", " "]))
        lines.append(f"{indent}{key}{separator}{value}")
    return ("\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n"]))).encode("utf-8", "surrogatepass")


# fmt: off
BYTE_TOKENS = [
    b"\t", b" ", b"  ", b"\n", b"\r", b":", b": ", b"- ", b"*", b"&", b"&a ", b"*a", b"!", b"!!binary ",
    b"[", b"]", b"{", b"}", b"#", b"'", b'"', b"|", b">", b"%", b"@", b"`", b"?", b",", b"\x00", b"\xff",
    b"\xc3", b"\xef\xbb\xbf", b"\n---\n", b"\n...\n", b"<<: *a\n", b"\\", b"\x85", b"\xe2\x80\xa8",
]
# fmt: on


@st.composite
def mutated_bytes(draw: st.DrawFn) -> tuple[str, bytes]:
    """A bundled file (which one is returned) with bytes inserted, deleted, repeated or swapped."""
    which = draw(st.sampled_from([*SPEC_FILES, "modelops.yaml"]))
    data = bytearray(PROJECT_TEXT if which == "modelops.yaml" else SPEC_TEXTS[which])
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "repeat", "swap-lines", "replace"]))
        if action == "insert":
            data[at:at] = draw(st.one_of(st.sampled_from(BYTE_TOKENS), st.binary(min_size=1, max_size=4)))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 20))]
        elif action == "repeat":
            piece = data[at : at + draw(st.integers(1, 60))]
            data[at:at] = piece * draw(st.integers(1, 3))
        elif action == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif action == "swap-lines":
            lines = bytes(data).split(b"\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            data = bytearray(b"\n".join(lines))
    return which, bytes(data)


# --- the properties ---------------------------------------------------------------------


@runs("text")
def test_yaml_like_text(workspace: Path, examples: int) -> None:
    @fuzz_settings(examples)
    @given(yaml_texts(), st.booleans())
    def prop(text: bytes, as_project: bool) -> None:
        run_tool(workspace, project=text) if as_project else run_tool(workspace, spec=text)

    prop()


@runs("documents")
def test_arbitrary_documents(workspace: Path, examples: int) -> None:
    @fuzz_settings(examples)
    @given(headed_documents(), st.booleans())
    def prop(document: Any, as_project: bool) -> None:
        text = yaml.safe_dump(document).encode()
        run_tool(workspace, project=text) if as_project else run_tool(workspace, spec=text)

    prop()


@runs("specs")
def test_mutated_specs(workspace: Path, examples: int) -> None:
    @fuzz_settings(examples)
    @given(mutated_specs())
    def prop(spec: bytes) -> None:
        run_tool(workspace, spec=spec)

    prop()


@runs("projects")
def test_mutated_project_files(workspace: Path, examples: int) -> None:
    @fuzz_settings(examples)
    @given(mutated_projects(), st.sampled_from(SPEC_FILES))
    def prop(project: bytes, spec_name: str) -> None:
        run_tool(workspace, spec=SPEC_TEXTS[spec_name], project=project)

    prop()


@runs("bytes")
def test_mutated_bytes(workspace: Path, examples: int) -> None:
    @fuzz_settings(examples)
    @given(mutated_bytes())
    def prop(mutated: tuple[str, bytes]) -> None:
        which, data = mutated
        run_tool(workspace, project=data) if which == "modelops.yaml" else run_tool(workspace, spec=data)

    prop()


def test_the_harness_renders_the_bundled_specs(workspace: Path) -> None:
    """The harness itself: valid input goes all the way through the renderers."""
    for text in SPEC_TEXTS.values():
        run_tool(workspace, spec=text)
        assert check([workspace / "specs" / "fuzz.yaml"], workspace / "specs" / "modelops.yaml").ok
