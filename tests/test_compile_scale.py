"""Compile at scale: workers stage their own files, the serialiser's memory stays bounded."""

from __future__ import annotations

import os
import random
import shutil
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler import api
from compiler import compile as compile_module
from compiler.bundle import writer
from compiler.bundle.writer import TXN, Staging, read_tree
from compiler.compile import PARALLEL_THRESHOLD
from compiler.errors import OutputError, WorkerStopped
from compiler.serialize import _Dumper, to_yaml
from tests.conftest import many_specs, spec_text

_SCALARS = st.one_of(st.text(max_size=6), st.integers(), st.booleans(), st.none())
_DOCS = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=30,
)


def _containers(node: Any, found: list[Any]) -> list[Any]:
    if isinstance(node, dict | list):
        found.append(node)
        for child in node.values() if isinstance(node, dict) else node:
            _containers(child, found)
    return found


@settings(max_examples=300, deadline=None)
@given(_DOCS, st.lists(st.integers(0, 1000), max_size=6), st.randoms(use_true_random=False))
def test_shared_containers_get_pyyamls_anchors(doc: Any, picks: list[int], chance: random.Random) -> None:
    """Containers shared anywhere (empty or not, in mappings or sequences, even inside
    themselves): the anchors and aliases PyYAML writes, byte for byte."""
    doc = {"root": doc, "more": [doc]}
    containers = _containers(doc, [])
    for pick in picks:
        shared, holder = containers[pick % len(containers)], chance.choice(containers)
        if isinstance(holder, dict):
            holder[f"s{pick}"] = shared
        else:
            holder.append(shared)
    expected = yaml.dump(
        doc, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=1_000_000
    )
    assert to_yaml(doc) == expected.encode()


def test_serialising_many_distinct_long_texts_keeps_none_of_them() -> None:
    """What the serialiser remembers between documents does not grow with their number: a
    dashboard's JSON or a long query is one model's own, not worth keeping."""
    documents = [
        {
            "data": {
                "dashboard.json": "{\n" + f'  "model": "m{i:05d}",\n' * 500 + "}\n",
                "query": f"q{i}" * 300,
            }
        }
        for i in range(300)
    ]
    to_yaml(documents[0])
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        written = sum(len(to_yaml(document)) for document in documents)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert written > 3_000_000
    assert held < 500_000, f"{held} bytes still held after serialising {written}"


def test_a_journal_committed_by_a_parallel_compile_is_replayed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker processes stage the files they render; a compile stopped right after its commit
    point leaves them and a journal, and the next compile (one process) finishes the tree."""
    specs = many_specs(tmp_path, PARALLEL_THRESHOLD // 2 + 1)
    out = tmp_path / "generated"
    options = api.Options(paths=[specs], stamp=False, out=out, jobs=2)
    with monkeypatch.context() as patched:  # the commit point, then nothing: a kill -9 there
        patched.setattr(Staging, "commit", lambda staging, removes: staging.journal(removes))
        written = api.write(api.check(options, api.Mode.FULL), api.Mode.FULL)
    assert written.rendered >= PARALLEL_THRESHOLD
    assert (out / TXN / "journal.json").is_file()
    assert api.write(api.check(api.Options(paths=[specs], stamp=False, out=out, jobs=1))).stale is False
    expected = tmp_path / "expected"
    api.write(api.check(api.Options(paths=[specs], stamp=False, out=expected, jobs=1), api.Mode.FULL))
    assert read_tree(out) == read_tree(expected)
    assert not (out / TXN).exists()


MODEL_FILE = "staging/ml-staging/m000/service.yaml"


def _published(out: Path) -> list[bytes]:
    """The bytes of every regular file in the tree (links not followed, staging excepted)."""
    found = []
    for directory, subdirectories, names in os.walk(out):
        subdirectories[:] = [name for name in subdirectories if name != TXN]
        found += [(Path(directory) / n).read_bytes() for n in names if not (Path(directory) / n).is_symlink()]
    return found


def _directory_there(out: Path, secret: Path) -> None:
    (out / MODEL_FILE / "kept").mkdir(parents=True)


def _link_there(out: Path, secret: Path) -> None:
    (out / MODEL_FILE).parent.mkdir(parents=True)
    (out / MODEL_FILE).symlink_to(secret)


def _staged_file_swapped_for_a_link(out: Path, secret: Path) -> None:
    staged = out / TXN / "files" / writer._staged_name(MODEL_FILE)
    staged.unlink()
    staged.symlink_to(secret)


@pytest.mark.parametrize(
    ("tamper", "refusal"),
    [
        (_directory_there, r"service\.yaml is in the way: modelops needs that path, and a directory"),
        (_link_there, r"service\.yaml is a symbolic link: modelops never follows a link inside its output"),
        (
            _staged_file_swapped_for_a_link,
            r"the staged file [0-9a-f]+ of an interrupted compile is a symbolic link",
        ),
    ],
)
def test_what_appears_between_the_check_and_the_renames_is_refused_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tamper: Callable[[Path, Path], None], refusal: str
) -> None:
    """A commit renames most files into place without a lookup each (the targets were checked
    just before, each directory is listed once): a directory or link made at a target since
    then, or a staged file swapped for a link, is refused and left as it is, nothing is
    published through it, and the journal stays for the next compile to finish."""
    specs = many_specs(tmp_path, 2)
    out = tmp_path / "generated"
    secret = tmp_path / "secret.txt"
    secret.write_text("TOKEN=hunter2\n")
    options = api.Options(paths=[specs], stamp=False, out=out, jobs=1)
    with monkeypatch.context() as patched:  # the check passes; the change comes right after it
        patched.setattr(writer, "_check_targets", lambda *_: tamper(out, secret))
        with pytest.raises(OutputError, match=refusal):
            api.write(api.check(options, api.Mode.FULL), api.Mode.FULL)
    target = out / MODEL_FILE
    assert (out / TXN / "journal.json").is_file()
    assert target.is_symlink() or not target.is_file()  # not replaced by the file
    assert secret.read_text() == "TOKEN=hunter2\n" and not any(b"hunter2" in f for f in _published(out))
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    else:
        target.unlink(missing_ok=True)
    staged = out / TXN / "files" / writer._staged_name(MODEL_FILE)
    if staged.is_symlink():
        staged.unlink()  # lost: the next compile renders it again
    api.write(api.check(options, api.Mode.FULL), api.Mode.FULL)
    expected = tmp_path / "expected"
    api.write(api.check(api.Options(paths=[specs], stamp=False, out=expected, jobs=1), api.Mode.FULL))
    assert read_tree(out) == read_tree(expected) and not (out / TXN).exists()


def _killed(batch: bytes) -> list[Any]:
    os._exit(137)  # as the kernel's OOM killer would end a worker


def test_a_render_worker_killed_stops_the_compile_and_leaves_the_tree_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs = many_specs(tmp_path, PARALLEL_THRESHOLD // 2 + 1)
    out = tmp_path / "generated"
    options = api.Options(paths=[specs], stamp=False, out=out, jobs=2)
    api.write(api.check(options, api.Mode.FULL), api.Mode.FULL)
    before = read_tree(out)
    (specs / "m001.yaml").write_text(spec_text("m001").replace("min: 2, max: 4", "min: 3, max: 4"))
    monkeypatch.setattr(compile_module, "_render_batch", _killed)
    with pytest.raises(WorkerStopped, match="a worker process rendering the models was killed"):
        api.write(api.check(options, api.Mode.FULL), api.Mode.FULL)
    assert read_tree(out) == before and not (out / TXN).exists()
