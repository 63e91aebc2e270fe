"""The model dashboard's rollout row: present while a version changes (canary, shadow or a
candidate), built from the metrics contract, and absent, byte for byte, otherwise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from compiler.metrics import contract
from compiler.spec.slo import SLI_WINDOWS
from tests.conftest import REPO
from tests.test_monitoring import _dashboard_exprs, _overlaps, _selectors, run_promtool
from tests.test_shadow_rules import candidate, compiled_project, insert, shadow_specs

SHARED = ["Traffic share by version", "Error ratio (5xx) by version"]


def canary_specs(root: Path) -> None:
    """credit-default: a canary of 1.5.0 in two steps; loan-risk-score: shadow before any
    candidate in production, and `rolling` written out in staging."""
    specs = root / "specs"
    insert(
        specs / "credit-default.yaml",
        "  evaluation:\n",
        candidate(root, "credit-default", "1.4.0", "1.5.0")
        + "  rollout:\n    strategy: canary\n"
        + "    canary: {steps: [{weight: 10, pause: 15m}, {weight: 50, pause: 30m}]}\n",
    )
    insert(
        specs / "loan-risk-score.yaml",
        "  evaluation:\n",
        "  rollout: {strategy: shadow, shadow: {tolerance: 2.5}}\n",
    )
    staging = "      serving:\n        replicas: {min: 1, max: 1}\n"
    insert(specs / "loan-risk-score.yaml", staging, "      rollout: {strategy: rolling}\n")


@pytest.fixture(scope="module")
def shadowed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compiled_project(tmp_path_factory.mktemp("shadow"), shadow_specs)


@pytest.fixture(scope="module")
def canary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compiled_project(tmp_path_factory.mktemp("canary"), canary_specs)


def _dashboard(generated: Path, model_dir: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((generated / model_dir / "dashboard.json").read_text())
    return loaded


def _rollout_row(dashboard: dict[str, Any]) -> tuple[str, list[dict[str, Any]]] | None:
    """The rollout row's title and its panels (up to the next row); None without one."""
    panels = dashboard["panels"]
    rows = [i for i, p in enumerate(panels) if p["type"] == "row"]
    first = panels[rows[0]]
    if not first["title"].startswith("Rollout"):
        assert not any(panels[i]["title"].startswith("Rollout") for i in rows)
        return None
    return first["title"], panels[rows[0] + 1 : rows[1]]


def _lines(panel: dict[str, Any]) -> list[float | None]:
    assert panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "line"
    return [step["value"] for step in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]


def test_shadow_shows_agreement_beside_each_versions_traffic(shadowed: Path) -> None:
    row = _rollout_row(_dashboard(shadowed, "production/ml-production/credit-default"))
    assert row is not None
    title, panels = row
    assert title == "Rollout (shadow: 1.5.0 beside 1.4.0)"
    by_title = {p["title"]: p for p in panels}
    assert list(by_title) == [
        *SHARED,
        "Latency p99 by version",
        "Shadow agreement with 1.4.0",
        "Shadow rows compared and requests dropped per second",
    ]
    assert _lines(by_title["Shadow agreement with 1.4.0"]) == [None, 0.95]  # 1 - maxDisagreement
    assert (
        "more than 5% disagree over 1h, once 100 rows"
        in by_title["Shadow agreement with 1.4.0"]["description"]
    )
    assert _lines(by_title["Latency p99 by version"]) == [None, 0.25]  # the SLO's threshold
    assert _lines(by_title["Error ratio (5xx) by version"]) == [None, 0.001]  # the error budget
    legends = [
        t["legendFormat"] for t in by_title["Shadow rows compared and requests dropped per second"]["targets"]
    ]
    assert legends == ["{{outcome}}", "dropped (queue full)"]

    row = _rollout_row(_dashboard(shadowed, "production/ml-production/loan-risk-score"))
    assert row is not None
    by_title = {p["title"]: p for p in row[1]}
    assert _lines(by_title["Shadow agreement with 2.1.0"]) == [None, 0.8]
    assert _lines(by_title["Absolute difference from 2.1.0's predictions"]) == [None, 2.5]  # the tolerance
    assert _lines(by_title["Latency p95 by version"]) == [None, 0.1]  # the SLO's 95% within 100ms
    assert (
        "histogram_quantile(0.95, sum by (version, le)"
        in by_title["Latency p95 by version"]["targets"][0]["expr"]
    )


def test_a_candidate_without_shadow_gets_the_row_without_agreement(shadowed: Path, canary: Path) -> None:
    staging = _rollout_row(_dashboard(shadowed, "staging/ml-staging/credit-default"))
    assert staging is not None
    assert staging[0] == "Rollout (rolling: 1.4.0 → 1.5.0)"
    assert [p["title"] for p in staging[1]] == [*SHARED, "Latency p99 by version"]
    row = _rollout_row(_dashboard(canary, "production/ml-production/credit-default"))
    assert row is not None
    assert row[0] == "Rollout (canary: 1.4.0 → 1.5.0)"
    share = row[1][0]
    assert share["description"].endswith("10% for 15m → 50% for 30m, then 100%.")
    expr = share["targets"][0]["expr"]
    assert expr.startswith("sum by (version) (rate(modelops_requests_total{") and "/ scalar(sum(" in expr
    # shadow before its candidate: the row, no agreement panels yet
    waiting = _rollout_row(_dashboard(canary, "production/ml-production/loan-risk-score"))
    assert waiting is not None
    assert waiting[0] == "Rollout (shadow)"
    assert [p["title"] for p in waiting[1]] == [*SHARED, "Latency p95 by version"]


def test_no_row_and_the_same_bytes_without_a_rollout(canary: Path) -> None:
    for path in sorted((REPO / "generated").glob("*/*/*/dashboard.json")):
        assert _rollout_row(json.loads(path.read_text())) is None, path
    # `rolling` written out, no candidate (production shadows, so the overlay applied): today's
    # dashboard, byte for byte
    staging = "staging/ml-staging/loan-risk-score"
    assert (canary / staging / "dashboard.json").read_bytes() == (
        REPO / "generated" / staging / "dashboard.json"
    ).read_bytes()


def _dashboards(*trees: Path) -> list[tuple[Path, dict[str, Any]]]:
    return [
        (p, json.loads(p.read_text())) for tree in trees for p in sorted(tree.glob("*/*/*/dashboard.json"))
    ]


def test_rollout_queries_use_the_contract_and_parse(shadowed: Path, canary: Path, tmp_path: Path) -> None:
    known = contract.series_names() | contract.recorded_names(tuple(w.text for w in SLI_WINDOWS))
    rows = [row for _, d in _dashboards(shadowed, canary) if (row := _rollout_row(d)) is not None]
    assert len(rows) == 7  # all but loan-risk-score in staging without a candidate
    exprs = [expr for _, panels in rows for expr in _dashboard_exprs({"panels": panels})]
    used = {name for expr in exprs for name in _selectors(expr)}
    assert {
        contract.SHADOW_COMPARISONS.total,
        contract.SHADOW_DROPPED.total,
        contract.SHADOW_DIFFERENCE.bucket,
    } <= used
    assert used <= known, used - known
    concrete = [e.replace("$__rate_interval", "5m").replace("$environment", "ns") for e in exprs]
    rules = [{"record": f"dashboard:check:{i}", "expr": e} for i, e in enumerate(concrete)]
    (tmp_path / "exprs.yaml").write_text(yaml.safe_dump({"groups": [{"name": "exprs", "rules": rules}]}))
    result = run_promtool("check", "rules", "exprs.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rollout_dashboards_fit_the_grid_and_the_sdk_model(shadowed: Path, canary: Path) -> None:
    for path, dashboard in _dashboards(shadowed, canary):
        again = json.loads(json.dumps(Dashboard.from_json(dashboard), cls=JSONEncoder, sort_keys=True))
        assert again == dashboard, path
        positions = [p["gridPos"] for p in dashboard["panels"]]
        for i, a in enumerate(positions):
            assert a["x"] >= 0 and a["x"] + a["w"] <= 24, path
            assert not any(_overlaps(a, b) for b in positions[i + 1 :]), (path, a)
