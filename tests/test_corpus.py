"""Every malformed spec in tests/corpus/ yields one clear, located error and exit code 1."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CORPUS, Result

# file -> (line, column, text the first error must contain)
EXPECTED: dict[str, tuple[int, int, str]] = {
    "availability-100.yaml": (18, 21, "less than 100"),
    "availability-negative.yaml": (18, 21, "greater than 0"),
    "billion-laughs.yaml": (1, 8, "billion laughs"),
    "binary.yaml": (3, 1, "binary file"),
    "comments-only.yaml": (1, 1, "file is empty"),
    "duplicate-feature.yaml": (13, 7, "feature 'income' is listed twice"),
    "duplicate-key.yaml": (10, 5, "duplicate key 'task' (first defined at line 9)"),
    "duration-garbage.yaml": (19, 15, "expected a duration such as 250ms"),
    "empty.yaml": (1, 1, "file is empty"),
    "env-overlay-invalid.yaml": (21, 33, "replicas.min (9) is greater than replicas.max (6)"),
    "env-undeclared.yaml": (
        20,
        5,
        "environment 'prod' is not declared in modelops.yaml; did you mean 'production'?",
    ),
    "features-not-list.yaml": (12, 15, "spec.model.features: input should be a valid list (got 'income')"),
    "framework-pytorch.yaml": (8, 16, "framework 'pytorch' is not supported"),
    "gate-unknown.yaml": (18, 7, "did you mean 'accuracy'?"),
    "gate-wrong-task.yaml": (18, 7, "gate 'r2' does not apply to a classification model"),
    "label-invalid.yaml": (6, 12, "'bad key!' is not a Kubernetes label key"),
    "latency-zero.yaml": (19, 28, "duration must be greater than zero"),
    "latin1.yaml": (6, 49, "not valid UTF-8"),
    "list-at-root.yaml": (1, 1, "expected a mapping with apiVersion, kind, metadata and spec"),
    "missing-metadata.yaml": (1, 1, "missing required field 'metadata'"),
    "missing-team.yaml": (4, 3, "metadata: missing required field 'team'"),
    "misspelled-nested.yaml": (
        18,
        7,
        "unknown field 'availabilty' in spec.monitoring.slo; did you mean 'availability'?",
    ),
    "multi-document.yaml": (20, 1, "more than one YAML document"),
    "name-too-long.yaml": (4, 9, "at most 40 characters"),
    "name-uppercase.yaml": (4, 9, "not a DNS-1123 label"),
    "policy-min-replicas.yaml": (
        15,
        21,
        "policy 'production-high-availability' (production): replicas.min is 1, needs at least 2",
    ),
    "psi-inverted.yaml": (20, 22, "drift psi warning (0.3) must be below critical (0.2)"),
    "python-tag.yaml": (5, 9, "unsupported YAML tag"),
    "quantity-garbage.yaml": (17, 26, "expected a Kubernetes quantity"),
    "replicas-inverted.yaml": (15, 21, "replicas.min (5) is greater than replicas.max (4)"),
    "replicas-string.yaml": (15, 21, "spec.serving.replicas.min: input should be a valid integer"),
    "requests-over-limits.yaml": (18, 21, "cpu limit 500m is below its request 2"),
    "scalar-at-root.yaml": (1, 1, "expected a mapping"),
    "sha-invalid.yaml": (12, 13, "not a sha256 digest"),
    "syntax-bad-indent.yaml": (9, 4, "YAML syntax error"),
    "syntax-tab-indent.yaml": (4, 1, "tabs are not allowed for indentation"),
    "syntax-unclosed-flow.yaml": (16, 13, "YAML syntax error"),
    "syntax-unclosed-quote.yaml": (19, 1, "YAML syntax error"),
    "task-invalid.yaml": (9, 11, "input should be 'classification' or 'regression' (got 'clustering')"),
    "undefined-alias.yaml": (5, 9, "undefined alias"),
    "unknown-field.yaml": (15, 5, "unknown field 'replicaz' in spec.serving; did you mean 'replicas'?"),
    "unknown-top-field.yaml": (19, 1, "unknown field 'status' at the top level"),
    "uri-absolute.yaml": (11, 10, "must be relative to the repository root"),
    "uri-scheme.yaml": (11, 10, "unsupported URI scheme 'ftp'"),
    "version-invalid.yaml": (10, 14, "expected a semantic version"),
    "version-number.yaml": (10, 14, "YAML read the version 1.0 as a number"),
    "wrong-api-version.yaml": (1, 13, "apiVersion: expected 'modelops.dev/v1alpha1', got 'modelops.dev/v1'"),
    "wrong-kind.yaml": (2, 7, "kind: expected 'Model', got 'Modle'; did you mean 'Model'?"),
}


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
