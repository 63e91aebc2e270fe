"""The safe loader: positions, duplicate keys, alias bounds, encodings, documents."""

from __future__ import annotations

import tracemalloc

import pytest

from compiler.diagnostics import DiagnosticError
from compiler.spec.yamlsource import MAX_NODES, load_bytes, load_text


def error_of(text: str | bytes) -> tuple[int, int, str, str]:
    with pytest.raises(DiagnosticError) as caught:
        if isinstance(text, bytes):
            load_bytes(text, "f.yaml")
        else:
            load_text(text, "f.yaml")
    (d,) = caught.value.diagnostics
    return d.line, d.column, d.code, d.message


def test_positions_are_kept_for_values_and_keys() -> None:
    doc = load_text("a:\n  b: [1, {c: x}]\n  d: yes\n", "f.yaml")
    assert doc.data == {"a": {"b": [1, {"c": "x"}], "d": True}}
    assert (doc.at(("a", "b", 1, "c")).line, doc.at(("a", "b", 1, "c")).column) == (2, 14)
    assert (doc.key_at(("a", "d")).line, doc.key_at(("a", "d")).column) == (3, 3)
    # a path that does not exist falls back to its nearest ancestor
    assert doc.at(("a", "b", 7)).line == 2


def test_keys_stay_as_written() -> None:
    assert load_text("on: 1\nno: 2\n3: x\n", "f.yaml").data == {"on": 1, "no": 2, "3": "x"}


def test_duplicate_keys_are_rejected_with_both_lines() -> None:
    line, column, code, message = error_of("a: 1\nb: 2\na: 3\n")
    assert (line, column, code) == (3, 1, "duplicate-key")
    assert "first defined at line 1" in message


def test_merge_keys_work_and_explicit_keys_win() -> None:
    doc = load_text("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n", "f.yaml")
    assert doc.data["use"] == {"x": 1, "y": 3}
    assert doc.at(("use",)).line == 3


def test_billion_laughs_is_rejected_with_bounded_memory() -> None:
    levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        levels.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 10)}]")
    tracemalloc.start()
    try:
        _, _, code, message = error_of("\n".join(levels) + "\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == "alias-bomb"
    assert str(MAX_NODES) in message
    assert peak < 64 * 1024 * 1024  # 10^10 nodes would need terabytes


def test_recursive_alias_is_rejected() -> None:
    _, _, code, _ = error_of("a: &a [1, *a]\n")
    assert code in {"alias-cycle", "yaml-syntax"}


def test_deep_nesting_is_rejected() -> None:
    _, _, code, _ = error_of("a: " + "[" * 100 + "]" * 100 + "\n")
    assert code == "too-deep"


def test_non_utf8_points_at_the_byte() -> None:
    line, column, code, message = error_of(b"a: 1\nb: caf\xe9\n")
    assert (line, column, code) == (2, 7, "encoding")
    assert "0xe9" in message


def test_utf8_bom_is_accepted() -> None:
    assert load_bytes(b"\xef\xbb\xbfa: 1\n", "f.yaml").data == {"a": 1}


def test_second_document_is_rejected_where_it_starts() -> None:
    line, _, code, _ = error_of("a: 1\n---\nb: 2\n")
    assert (line, code) == (3, "multi-document")


def test_document_end_marker_alone_is_fine() -> None:
    assert load_text("a: 1\n...\n", "f.yaml").data == {"a": 1}


def test_custom_tags_are_rejected() -> None:
    assert error_of("a: !!python/name:os.system ''\n")[2] == "yaml-tag"
    assert error_of("a: !custom {x: 1}\n")[2] == "yaml-tag"


def test_non_scalar_keys_are_rejected() -> None:
    assert error_of("? [a, b]\n: 1\n")[2] == "yaml-key"


def test_control_characters_give_a_clean_error() -> None:
    assert error_of("a: \x07bell\n")[2] == "yaml-syntax"
