"""The canary's analysis queries, against real promtool: each parses, and its generated tests
(analysis.test.yaml) pass: a candidate as good as the stable passes every metric, a candidate
worse on one check fails exactly that metric, too little traffic gives no verdict."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from compiler.metrics import contract
from tests.canary_project import add_candidate, copy_project, edit_spec, load, model_files
from tests.conftest import SPECS
from tests.test_monitoring import run_promtool

MODELS = ("credit-default", "loan-risk-score")
CHECKS = {
    "credit-default": ["availability", "latency", "drift", "class-shares"],
    "loan-risk-score": ["availability", "latency", "drift"],  # a regressor has no classes
}
CONDITION = re.compile(r"len\(result\) > 0 && result\[0\] (<=|>) (\S+)")
JUDGED = re.compile(r"\A\(\n(?P<query>.*)\n\) <= bool (?P<bound>\S+)\Z", re.S)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both bundled models as canaries of a candidate, compiled; their production directories."""
    root = copy_project(tmp_path_factory.mktemp("canary"))
    for model in MODELS:
        edit_spec(root, model, candidate=add_candidate(root, model))
    out = root / "out"
    for model, files in model_files(root).items():
        (out / model).mkdir(parents=True)
        for name, content in files.items():
            (out / model / name).write_bytes(content)
    return out


def _template(directory: Path) -> dict[str, Any]:
    template: dict[str, Any] = yaml.safe_load((directory / "analysistemplate.yaml").read_text())
    return template


def _metrics(directory: Path) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in _template(directory)["spec"]["metrics"]}


def _tests(directory: Path) -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = yaml.safe_load((directory / "analysis.test.yaml").read_text())["tests"]
    return tests


def _outcomes(case: dict[str, Any], metrics: dict[str, dict[str, Any]]) -> dict[str, int | None]:
    """Per metric, what the case expects of it: 1 (passes), 0 (fails), None (no value)."""
    queries = {m["provider"]["prometheus"]["query"]: name for name, m in metrics.items()}
    found: dict[str, int | None] = {}
    for test in case["promql_expr_test"]:
        judged = JUDGED.match(test["expr"])
        if judged is None:
            assert test["exp_samples"] == []
            found[queries[test["expr"]]] = None
        else:
            (sample,) = test["exp_samples"]
            found[queries[judged["query"]]] = sample["value"]
    return found


@pytest.mark.parametrize("model", MODELS)
def test_promtool_passes_the_analysis_tests(compiled: Path, model: str) -> None:
    result = run_promtool("test", "rules", "analysis.test.yaml", cwd=compiled / model)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("model", MODELS)
def test_every_metric_passes_fails_alone_and_gives_no_verdict(compiled: Path, model: str) -> None:
    metrics = _metrics(compiled / model)
    assert list(metrics) == CHECKS[model]
    outcomes = [_outcomes(case, metrics) for case in _tests(compiled / model)]
    assert dict.fromkeys(metrics, 1) in outcomes  # the candidate serves like the stable
    assert dict.fromkeys(metrics) in outcomes  # too little traffic: no metric has a value
    for name in metrics:  # worse on this one: it fails, every other passes
        assert {**dict.fromkeys(metrics, 1), name: 0} in outcomes, name
    drift = [
        case["name"] for case in _tests(compiled / model) if case["name"].startswith("drift fails alone")
    ]
    assert len(drift) == 4  # each feature's baseline is in the query: shifting any one fails it


@pytest.mark.parametrize("model", MODELS)
def test_the_tests_hold_each_query_to_its_success_conditions_bound(compiled: Path, model: str) -> None:
    metrics = _metrics(compiled / model)
    for name, metric in metrics.items():
        success = CONDITION.fullmatch(metric["successCondition"])
        failure = CONDITION.fullmatch(metric["failureCondition"])
        assert success and failure and success[1] == "<=" and failure[1] == ">"
        assert success[2] == failure[2]  # no gap: a value is a pass or a failure
        for case in _tests(compiled / model):
            for test in case["promql_expr_test"]:
                judged = JUDGED.match(test["expr"])
                if judged and judged["query"] == metric["provider"]["prometheus"]["query"]:
                    assert float(judged["bound"]) == float(success[2]), (name, case["name"])
    bounds = {name: float(CONDITION.fullmatch(m["successCondition"])[2]) for name, m in metrics.items()}  # type: ignore[index]
    spec = yaml.safe_load((SPECS / f"{model}.yaml").read_text())["spec"]["monitoring"]
    assert bounds["availability"] == pytest.approx(1 - spec["slo"]["availability"] / 100)
    assert bounds["latency"] == pytest.approx(1 - spec["slo"]["latency"]["target"] / 100)
    assert bounds["drift"] == spec["drift"]["psi"]["critical"]
    if "class-shares" in bounds:
        assert bounds["class-shares"] == spec["drift"]["psi"]["warning"]


def test_every_query_parses(compiled: Path, tmp_path: Path) -> None:
    rules = [
        {
            "record": f"analysis:{model.replace('-', '_')}:{name.replace('-', '_')}",
            "expr": metric["provider"]["prometheus"]["query"],
        }
        for model in MODELS
        for name, metric in _metrics(compiled / model).items()
    ]
    (tmp_path / "queries.yaml").write_text(yaml.safe_dump({"groups": [{"name": "analysis", "rules": rules}]}))
    result = run_promtool("check", "rules", "queries.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_a_query_blind_to_the_version_fails_its_tests(compiled: Path, tmp_path: Path) -> None:
    """The stable serves nine times the candidate's traffic in the tests: a query that reads
    both versions sees the candidate's faults diluted, and the stable's requests pass its guard."""
    tests = yaml.safe_load((compiled / "credit-default" / "analysis.test.yaml").read_text())
    for case in tests["tests"]:
        for test in case["promql_expr_test"]:
            test["expr"] = test["expr"].replace(',version="1.5.0"', "")
    (tmp_path / "analysis.test.yaml").write_text(yaml.safe_dump(tests))
    result = run_promtool("test", "rules", "analysis.test.yaml", cwd=tmp_path)
    assert result.returncode != 0
    assert "FAILED" in result.stderr


@pytest.mark.parametrize("model", MODELS)
def test_queries_select_the_candidate_of_the_model_in_its_namespace(compiled: Path, model: str) -> None:
    known = contract.series_names()
    for name, metric in _metrics(compiled / model).items():
        query = metric["provider"]["prometheus"]["query"]
        selectors = re.findall(r"([a-z_:]+)\{([^}]*)\}", query)
        assert selectors, name
        for series, matchers in selectors:
            assert series in known, (name, series)
            assert f'model="{model}"' in matchers and 'namespace="ml-production"' in matchers, (
                name,
                matchers,
            )
            assert re.search(r'version="[^"]+"', matchers), (name, matchers)
        # the minimum-traffic guard counts the candidate's requests
        assert query.endswith(">= 50)"), name
        assert metric["provider"]["prometheus"]["address"] == "http://prometheus-operated.monitoring.svc:9090"


def test_class_shares_compare_the_candidate_with_the_stable(compiled: Path) -> None:
    query = _metrics(compiled / "credit-default")["class-shares"]["provider"]["prometheus"]["query"]
    versions = re.findall(r'modelops_prediction_bin_total\{[^}]*version="([^"]+)"', query)
    assert set(versions) == {"1.4.0", "1.5.0"}


@pytest.mark.parametrize(
    ("analysis", "window", "interval"),
    [
        ("{interval: 1m}", "2m", "1m"),  # twice the interval, at least 2m
        ("{interval: 30s}", "2m", "30s"),
        ("{interval: 5m, failureLimit: 3}", "10m", "5m"),
        ("{interval: 1m, window: 5m}", "5m", "1m"),
        ("{interval: 1d, window: 2d}", "2d", "24h"),  # Prometheus knows days, Go does not
    ],
)
def test_window_interval_and_failure_limit_come_from_the_spec(
    project: Path, analysis: str, window: str, interval: str
) -> None:
    rollout = f"  rollout:\n    strategy: canary\n    canary:\n      steps: [{{weight: 20, pause: 1h}}]\n      analysis: {analysis}\n"
    edit_spec(project, "loan-risk-score", rollout=rollout)
    files = model_files(project)["loan-risk-score"]
    failure_limit = yaml.safe_load(analysis).get("failureLimit", 1)
    for metric in load(files["analysistemplate.yaml"])["spec"]["metrics"]:
        assert (metric["interval"], metric["failureLimit"]) == (interval, failure_limit)
        assert metric["initialDelay"] == window.replace("2d", "48h")
        ranges = re.findall(r"\[(\w+)\]", metric["provider"]["prometheus"]["query"])
        assert ranges and set(ranges) == {window}
    tests = yaml.safe_load(files["analysis.test.yaml"])
    assert all(case["promql_expr_test"] for case in tests["tests"])
