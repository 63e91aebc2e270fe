"""Environment resolution: defaults <- spec <- environments[env], deep-merged into the IR."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from compiler.pipeline import check
from compiler.resolve.merge import Layer, merge_layers
from compiler.spec.yamlsource import load_text
from tests.conftest import SPECS, spec_text


def merged(*texts: str) -> tuple[object, object]:
    docs = [load_text(t, f"layer{i}.yaml") for i, t in enumerate(texts)]
    data, positions = merge_layers([Layer(d.data, d.positions, ()) for d in docs], ("out",))
    return data, positions


def test_mappings_merge_lists_replace_null_removes() -> None:
    data, _ = merged(
        "a: {x: 1, y: 2}\nl: [1, 2, 3]\nk: keep\nz: 9\n",
        "a: {y: 20, w: 30}\nl: [9]\nz: null\n",
    )
    assert data == {"a": {"x": 1, "y": 20, "w": 30}, "l": [9], "k": "keep"}


def test_merged_positions_point_at_the_winning_layer() -> None:
    _, positions = merged("a: {x: 1, y: 2}\n", "\n\na: {y: 20}\n")
    assert positions.value(("out", "a", "x")).file == "layer0.yaml"  # type: ignore[attr-defined]
    winner = positions.value(("out", "a", "y"))  # type: ignore[attr-defined]
    assert (winner.file, winner.line) == ("layer1.yaml", 3)


def test_scalar_over_mapping_hides_lower_layers() -> None:
    data, positions = merged("a: {x: {deep: 1}}\n", "a: {x: flat}\n")
    assert data == {"a": {"x": "flat"}}
    assert positions.value(("out", "a", "x", "deep")).file == "layer1.yaml"  # type: ignore[attr-defined]


def test_bundled_specs_resolve_per_environment() -> None:
    checked = check([SPECS])
    assert checked.ok, checked.diagnostics
    by_key = {(m.name, m.environment): m for m in checked.models}
    staging = by_key[("credit-default", "staging")]
    production = by_key[("credit-default", "production")]
    assert (staging.serving.replicas.min, staging.serving.replicas.max) == (1, 2)
    assert (production.serving.replicas.min, production.serving.replicas.max) == (3, 20)
    assert production.namespace == "ml-production"
    # the project default image fills in, the spec's own resources win over the defaults
    assert production.image == "ghcr.io/acme/modelops-runtime:0.1.0"
    assert str(production.serving.resources.requests.cpu) == "250m"
    assert str(production.serving.resources.limits.memory) == "1Gi"
    # a null in an overlay removes the key, so the built-in default (no autoscaling) applies
    assert by_key[("loan-risk-score", "staging")].serving.autoscaling is None
    assert by_key[("loan-risk-score", "production")].serving.autoscaling is not None
    assert production.source == "specs/credit-default.yaml"


def test_resolved_model_is_immutable() -> None:
    model = check([SPECS]).models[0]
    with pytest.raises(pydantic.ValidationError):
        model.name = "other"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        model.serving.replicas.min = 7  # type: ignore[misc]


def test_missing_image_everywhere_is_an_error(project: Path) -> None:
    project_file = project / "specs" / "modelops.yaml"
    project_file.write_text(
        project_file.read_text().replace("    image: ghcr.io/acme/modelops-runtime:0.1.0\n", "")
    )
    (project / "specs" / "credit-default.yaml").unlink()
    (project / "specs" / "loan-risk-score.yaml").unlink()
    (project / "specs" / "demo.yaml").write_text(spec_text())
    checked = check([project / "specs"])
    assert not checked.ok
    assert any("no runtime image for environment staging" in d.message for d in checked.diagnostics)


def test_environment_filter() -> None:
    checked = check([SPECS], environments=["staging"])
    assert {m.environment for m in checked.models} == {"staging"}
