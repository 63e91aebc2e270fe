"""Every malformed spec in tests/corpus/ yields one clear, located error and exit code 1."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CORPUS, Result


def _expectations() -> dict[str, tuple[int, int, str]]:
    """file -> (line, column, text the first error must contain), from corpus/expected.tsv."""
    rows = (CORPUS / "expected.tsv").read_text(encoding="utf-8").splitlines()
    expected = {}
    for row in rows:
        if row and not row.startswith("#"):
            name, line, column, text = row.split("\t")
            expected[name] = (int(line), int(column), text)
    return expected


EXPECTED = _expectations()


def test_corpus_is_complete() -> None:
    files = {p.name for p in CORPUS.glob("*.yaml")} - {"modelops.yaml"}
    assert files == set(EXPECTED), "every corpus file needs an expectation, and vice versa"
    assert len(files) >= 30


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_malformed_spec_gives_located_error(cli: Callable[..., Result], name: str) -> None:
    line, column, text = EXPECTED[name]
    result = cli("validate", CORPUS / name)
    assert result.code == 1, result.out + result.err
    assert "Traceback" not in result.out + result.err
    errors = [row for row in result.out.splitlines() if ": error: " in row]
    assert errors, result.out
    expected_place = f"{Path('tests/corpus') / name}:{line}:{column}: error: "
    matching = [row for row in errors if row.startswith(expected_place) and text in row]
    assert matching, f"no error at {expected_place} containing {text!r} in:\n{result.out}"


def test_all_errors_in_all_files_are_reported_in_one_run(cli: Callable[..., Result]) -> None:
    names = ["unknown-field.yaml", "version-number.yaml", "binary.yaml", "replicas-inverted.yaml"]
    result = cli("validate", *(CORPUS / n for n in names))
    assert result.code == 1
    for name in names:
        assert f"corpus/{name}:" in result.out
    assert "4 errors, 0 warnings in 4 files" in result.out


def test_huge_file_is_rejected_before_parsing(cli: Callable[..., Result], tmp_path: Path) -> None:
    (tmp_path / "modelops.yaml").write_bytes((CORPUS / "modelops.yaml").read_bytes())
    huge = tmp_path / "huge.yaml"
    huge.write_text("description: " + "x" * (2 * 1024 * 1024) + "\n")
    result = cli("validate", huge)
    assert result.code == 1
    assert "huge.yaml:1:1: error: file is 2097166 bytes, over the 1024 KiB limit" in result.out
