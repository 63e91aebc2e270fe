"""Compile at scale: worker processes, the direct serialisers, and a check that hashes files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler import api
from compiler.bundle.writer import read_tree
from compiler.check_workers import WORKER_THRESHOLD
from compiler.compile import PARALLEL_THRESHOLD
from compiler.serialize import _Dumper, to_json, to_yaml
from tests.conftest import many_specs, spec_text


def _options(specs: Path, out: Path, jobs: int) -> api.Options:
    return api.Options(paths=[specs], stamp=False, out=out, jobs=jobs)


def test_one_process_and_two_write_the_same_bytes(tmp_path: Path) -> None:
    # enough specs to check them in workers, and models to render them in workers
    specs = many_specs(tmp_path, max(PARALLEL_THRESHOLD // 2 + 1, WORKER_THRESHOLD))
    for jobs in (1, 2):
        options = _options(specs, tmp_path / f"jobs{jobs}", jobs)
        written = api.write(api.check(options, api.Mode.FULL), api.Mode.FULL)
        assert written.rendered >= PARALLEL_THRESHOLD
    assert read_tree(tmp_path / "jobs1") == read_tree(tmp_path / "jobs2")
    in_memory = api.render(api.check(_options(specs, tmp_path / "unused", 2))).files
    assert in_memory == read_tree(tmp_path / "jobs1")


def test_check_renders_nothing_unchanged_and_still_finds_edits_by_hand(tmp_path: Path) -> None:
    specs = many_specs(tmp_path, 2)
    out = tmp_path / "generated"
    options = _options(specs, out, 1)
    api.write(api.check(options, api.Mode.FULL), api.Mode.FULL)
    clean = api.write(api.check(options, api.Mode.CHECK), api.Mode.CHECK)
    assert not clean.stale and clean.rendered == 0 and clean.reused == 4
    model = "staging/ml-staging/m000"
    (out / model / "deployment.yaml").write_text("edited by hand\n")
    (out / model / "service.yaml").unlink()
    (out / "production/ml-production/m001/deployment.yaml").write_text("")
    checked = api.write(api.check(options, api.Mode.CHECK), api.Mode.CHECK)
    assert checked.rendered == 0  # nothing re-rendered: the files' hashes told
    assert checked.changes.changed == [
        "production/ml-production/m001/deployment.yaml",
        f"{model}/deployment.yaml",
    ]
    assert checked.changes.added == [f"{model}/service.yaml"]
    (specs / "m001.yaml").write_text(spec_text("m001").replace("min: 2, max: 4", "min: 3, max: 4"))
    changed = api.write(api.check(options, api.Mode.CHECK), api.Mode.CHECK)
    assert changed.rendered == 2 and "staging/ml-staging/m001/deployment.yaml" in changed.changes.changed


_TEXT = st.text(
    st.sampled_from(list("ab: -#'\"\n\t{}[],&*!|>%@`?.~=<0123456789eE+_/\\é\u2028\x85 ")), max_size=12
)
_SCALARS = st.one_of(
    _TEXT,
    st.sampled_from(["", "true", "no", "null", "~", "1.5", "0x1f", "1:30", "2024-01-02", "---", "- a"]),
    st.integers(),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
)
_DOCS = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=25,
)


def _pyyaml(obj: Any) -> bytes:
    text: str = yaml.dump(
        obj, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=1_000_000
    )
    return text.encode()


@settings(max_examples=400, deadline=None)
@given(_DOCS, st.booleans())
def test_yaml_is_pyyamls_bytes(doc: Any, share: bool) -> None:
    if share and isinstance(doc, dict | list):
        doc = {"a": doc, "b": [doc, {"c": doc}]}  # shared objects: anchors and aliases
    assert to_yaml(doc) == _pyyaml(doc)


_LINES = st.lists(
    st.sampled_from(["", "{", '  "a": [1, 2],', "  b: c", "}", "x y", "\t", "é", "\U0001f600 z", "日本"]),
    min_size=1,
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(_LINES, st.booleans(), st.integers(0, 3))
def test_multi_line_text_is_pyyamls_literal_block(lines: list[str], ends: bool, depth: int) -> None:
    """Embedded files (a dashboard's JSON in its ConfigMap) at any depth, with and without
    empty lines and a final line break: the literal block PyYAML writes, or its other style."""
    doc: Any = "\n".join(lines) + ("\n" if ends else "")
    for level in range(depth):
        doc = {f"k{level}": doc} if level % 2 else [doc, "z"]
    doc = {"data": doc}
    assert to_yaml(doc) == _pyyaml(doc)


@settings(max_examples=300, deadline=None)
@given(_DOCS)
def test_json_is_json_dumps_bytes(doc: Any) -> None:
    expected = (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
    assert to_json(doc) == expected
    if "NaN" not in expected.decode() and "Infinity" not in expected.decode():  # what finite vouches for
        assert to_json(doc, finite=True) == expected


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(["", "1e-5", "10.00001", "e-"]))
def test_json_of_finite_floats_is_json_dumps_bytes(number: float, text: str) -> None:
    """Floats of every size (orjson and json write those below 1e-4 differently), beside text
    that looks like them."""
    doc = {"number": number, "list": [number, text], "text": text}
    assert to_json(doc, finite=True) == (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
