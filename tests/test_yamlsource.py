"""The safe loader: positions, duplicate keys, alias bounds, encodings, documents."""

from __future__ import annotations

import tracemalloc

import pytest
import yaml

from compiler.diagnostics import DiagnosticError
from compiler.spec.yamlsource import MAX_EXPANDED_CHARS, MAX_NODES, load_bytes, load_text


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


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("a:\n\tb: 1\n", 2, 1),  # PyYAML: "found character that cannot start any token"
        ("a:\n  b: 1\n\tc: 2\n", 3, 1),  # "found a tab character that violates indentation"
        ("a:\n  b: 1\n  \tc: 2\n", 3, 3),
        ("a:\n  -\tx\n", 2, 4),
        ("a: |\n\ttext\n", 2, 1),  # "found a tab character where an indentation space is expected"
        ("\ta: 1\n", 1, 1),
    ],
)
def test_tab_indentation_is_named_where_the_tab_is(text: str, line: int, column: int) -> None:
    assert error_of(text) == (
        line,
        column,
        "yaml-syntax",
        "YAML syntax error: tabs are not allowed for indentation; use spaces",
    )


def test_tabs_between_values_are_still_fine() -> None:
    assert load_text("a:\t1\nb: [1,\n\t2]\nc: 1 \t# note\n", "f.yaml").data == {"a": 1, "b": [1, 2], "c": 1}


def alias_bomb(value_size: int, aliases: int) -> str:
    """One long string, then many labels that repeat it: small to write, huge to expand."""
    lines = ["labels:", f"  pager: &big {'x' * value_size}"]
    lines += [f"  l{i}: *big" for i in range(aliases)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("value_size", "aliases"), [(100_000, 5_000), (10_000, 1_000)])
def test_a_long_value_repeated_by_aliases_is_rejected_at_the_alias(value_size: int, aliases: int) -> None:
    text = alias_bomb(value_size, aliases)
    assert len(text) < MAX_EXPANDED_CHARS  # the file itself is small: only the expansion is not
    tracemalloc.start()
    try:
        line, column, code, message = error_of(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == "alias-bomb"
    assert "2 MiB of keys and values" in message
    # the first alias that takes the keys and values past the limit, where it is written
    total, crossing = len("labels") + len("pager") + value_size, 0
    while (total := total + len(f"l{crossing}") + value_size) <= MAX_EXPANDED_CHARS:
        crossing += 1
    assert (line, column) == (3 + crossing, len(f"  l{crossing}: ") + 1)
    assert peak < 32 * 1024 * 1024


def test_expanded_size_counts_keys_and_values_after_aliases() -> None:
    under = alias_bomb(1_000, (MAX_EXPANDED_CHARS - 20_000) // 1_010)
    assert len(load_text(under, "f.yaml").data["labels"]) > 2_000
    assert error_of(alias_bomb(1_000, MAX_EXPANDED_CHARS // 1_000))[2] == "alias-bomb"


def test_documents_with_aliases_load_as_yaml_does() -> None:
    text = (
        "base: &b {x: 1, y: [a, b]}\n"
        "key: &k name\n"
        "use: {<<: *b, y: 3}\n"
        "many: {<<: [*b, {z: 4}]}\n"
        "again: *b\n"
        "renamed: {*k : 1}\n"
        "star: '*not an alias'\n"
    )
    assert load_text(text, "f.yaml").data == yaml.safe_load(text)


def test_a_value_given_by_an_alias_is_placed_where_the_alias_is() -> None:
    doc = load_text("a: &x {b: 1}\nc:\n  d: *x\n", "f.yaml")
    assert (doc.at(("c", "d")).line, doc.at(("c", "d")).column) == (3, 6)
    assert doc.at(("c", "d", "b")).line == 1  # inside it, the anchored text itself


def test_recursive_alias_is_named_at_the_alias() -> None:
    assert error_of("a: &a [1, *a]\n")[:3] == (1, 11, "alias-cycle")


def test_deep_nesting_beside_an_alias_is_rejected_cleanly() -> None:
    # documents with aliases are composed in Python, which would hit the recursion limit
    text = "a: &x 1\nb: " + "[" * 900 + "*x" + "]" * 900 + "\n"
    line, _, code, _ = error_of(text)
    assert (line, code) == (2, "too-deep")


def test_duplicate_anchor_names_the_first_one() -> None:
    for text in ("a: &x 1\nb: &x 2\nc: *x\n", "a: &x 1\nb: &x 2\n"):
        line, column, code, message = error_of(text)
        assert (line, column, code) == (2, 4, "yaml-syntax")
        assert "already defined at line 1" in message
