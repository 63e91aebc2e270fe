"""Property tests: any input ends in a valid spec or clean diagnostics, never an exception."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from compiler.diagnostics import Diagnostic, DiagnosticError
from compiler.pipeline import check
from compiler.resolve.resolver import merge_spec
from compiler.spec.catalog import LoadedSpec, parse_project, parse_spec
from compiler.spec.check_merged import check_environment
from compiler.spec.yamlsource import load_bytes
from tests.conftest import SPECS

CATALOG = check([SPECS]).catalog
assert CATALOG is not None
VALID = yaml.safe_load((SPECS / "credit-default.yaml").read_text())

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["250ms", "28d", "512Mi", "250m", "1.4.0", "sklearn", "regression", "99.9", "", "-1"]),
)
trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


def run_pipeline(raw: bytes) -> list[Diagnostic]:
    """What `modelops validate` does with one file; returns diagnostics, raises on a bug."""
    assert CATALOG is not None
    try:
        document = load_bytes(raw, "prop.yaml")
    except DiagnosticError as err:
        assert err.diagnostics
        return err.diagnostics
    spec, problems = parse_spec(document)
    if spec is None:
        assert problems
        return problems
    found: list[Diagnostic] = []
    for env in CATALOG.project.environments:
        merged = merge_spec(CATALOG, LoadedSpec(document, spec, "prop.yaml"), env)
        _, diagnostics = check_environment(CATALOG.project, merged)
        found += diagnostics
    return found


def assert_clean(diagnostics: list[Diagnostic]) -> None:
    for d in diagnostics:
        assert d.line >= 1 and d.column >= 1 and d.message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes(raw: bytes) -> None:
    assert_clean(run_pipeline(raw))


HEADER = {"apiVersion": "modelops.dev/v1alpha1", "kind": "Model"}
# Pydantic names a bad mapping key `[key]` in its error paths; a user may write that key too.
MARKER_KEYS = [
    {"[key]": None},
    {**HEADER, "[key]": None},
    {**HEADER, "metadata": {"[key]": None}},
    {**HEADER, "metadata": {"name": "a", "team": "b", "labels": {"[key]": "x", "[key]x": "[key]"}}},
    {**HEADER, "spec": {"evaluation": {"gates": {"[key]": {"[key]": 1}}}}},
]


@settings(max_examples=300, deadline=None)
@given(trees)
@example(MARKER_KEYS[0])
@example(MARKER_KEYS[1])
@example(MARKER_KEYS[2])
@example(MARKER_KEYS[3])
@example(MARKER_KEYS[4])
def test_arbitrary_documents(tree: Any) -> None:
    assert_clean(run_pipeline(yaml.safe_dump(tree).encode()))


@settings(max_examples=200, deadline=None)
@given(trees)
@example({"[key]": None})
@example({"apiVersion": "modelops.dev/v1alpha1", "kind": "Project", "metadata": {"[key]": 1}, "[key]": 2})
def test_arbitrary_project_documents(tree: Any) -> None:
    try:
        document = load_bytes(yaml.safe_dump(tree).encode(), "modelops.yaml")
    except DiagnosticError as err:
        assert_clean(err.diagnostics)
        return
    project, problems = parse_project(document)
    assert project is not None or problems
    assert_clean(problems)


@pytest.mark.parametrize("tree", MARKER_KEYS)
def test_a_key_named_like_the_marker_is_an_unknown_field_at_its_own_line(tree: dict[str, Any]) -> None:
    text = yaml.safe_dump(tree, sort_keys=False, default_flow_style=False)
    lines = text.splitlines()
    about_it = [d for d in run_pipeline(text.encode()) if "'[key]'" in d.message]
    assert about_it, text
    for d in about_it:
        assert lines[d.line - 1][d.column - 1 :].startswith("'[key]'"), (d, text)


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found += paths_of(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += paths_of(v, (*prefix, i))
    return found


ALL_PATHS = [p for p in paths_of(VALID) if p]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(ALL_PATHS),
    st.sampled_from(["replace", "delete", "add"]),
    trees,
    st.text(min_size=1, max_size=10),
)
def test_mutated_valid_specs(path: tuple[Any, ...], action: str, value: Any, key: str) -> None:
    spec = copy.deepcopy(VALID)
    parent = spec
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "replace":
        parent[last] = value
    elif action == "delete":
        del parent[last]
    elif isinstance(parent[last], dict):
        parent[last][key] = value
    else:
        parent[last] = {key: value}
    diagnostics = run_pipeline(yaml.safe_dump(spec).encode())
    assert_clean(diagnostics)


def test_valid_spec_passes_the_same_harness() -> None:
    assert [d for d in run_pipeline(yaml.safe_dump(VALID).encode()) if d.is_error] == []


@given(st.floats() | st.sampled_from([0.25, 1e6, 999_999.9999, 1e-7, 123_456_789.0, -3.5]))
def test_le_labels_are_what_prometheus_client_writes(bound: float) -> None:
    """The rules and dashboards select the `le` bucket the runtime exports: same text, any float."""
    from prometheus_client.utils import floatToGoString

    from compiler.metrics.contract import le_label

    assert le_label(bound) == floatToGoString(bound)  # type: ignore[no-untyped-call]
