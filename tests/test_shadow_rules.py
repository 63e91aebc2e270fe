"""Shadow agreement rules (rollout.strategy: shadow with a candidate), against real promtool:
the rules compiled from a copy of the project whose specs shadow a candidate, their generated
unit tests, hand-written scenarios, and rules broken on purpose.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from compiler import api
from compiler.metrics import contract
from compiler.spec.slo import SLI_WINDOWS
from compiler.targets.prometheus.promql import matchers
from compiler.targets.prometheus.unittests import expand
from tests.conftest import REPO, SPECS
from tests.test_monitoring import MODEL_DIRS, _selectors, run_promtool

CREDIT = Path("production/ml-production/credit-default")
LOAN = Path("production/ml-production/loan-risk-score")
STAGING_CREDIT = Path("staging/ml-staging/credit-default")
SHADOW_ALERTS = {"ModelShadowDisagreement", "ModelShadowDropped"}
RULES = "rules.yaml"


def candidate(root: Path, model: str, stable: str, version: str) -> str:
    """A candidate's spec entry, pinning an artifact of its own (the stable's bytes and one more)."""
    target = root / "models" / model / version / "model.skops"
    target.parent.mkdir(parents=True)
    target.write_bytes((root / "models" / model / stable / "model.skops").read_bytes() + b"\n")
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    uri = target.relative_to(root).as_posix()
    return f"  candidate: {{version: {version}, uri: {uri}, sha256: '{digest}'}}\n"


def compiled_project(root: Path, edit: Callable[[Path], None]) -> Path:
    """A copy of the bundled project, its specs changed by `edit` (given the project root),
    compiled in-process; returns the compiled tree."""
    shutil.copytree(SPECS, root / "specs")
    for directory in ("models", "data", "evaluations"):
        shutil.copytree(REPO / directory, root / directory)
    edit(root)
    out = root / "generated"
    api.write(api.check(api.Options(paths=[root / "specs"], out=out, jobs=1)))
    return out


def insert(spec: Path, before: str, text: str) -> None:
    source = spec.read_text()
    assert before in source, (spec, before)
    spec.write_text(source.replace(before, text + before, 1))


def shadow_specs(root: Path) -> None:
    """credit-default shadows 1.5.0 in production (staging rolls it out straight); loan-risk-score
    shadows 2.2.0 with its own limits and a 6h window (its drift window)."""
    specs = root / "specs"
    insert(
        specs / "credit-default.yaml",
        "  evaluation:\n",
        candidate(root, "credit-default", "1.4.0", "1.5.0") + "  rollout: {strategy: shadow}\n",
    )
    insert(
        specs / "credit-default.yaml",
        "      serving: {replicas: {min: 1, max: 2}}\n",
        "      rollout: {strategy: rolling}\n",
    )
    insert(
        specs / "loan-risk-score.yaml",
        "  evaluation:\n",
        candidate(root, "loan-risk-score", "2.1.0", "2.2.0")
        + "  rollout:\n    strategy: shadow\n"
        + "    shadow: {tolerance: 2.5, maxDisagreement: 0.2, minComparisons: 500}\n",
    )
    insert(specs / "loan-risk-score.yaml", "      psi: {warning: 0.1", "      window: 6h\n")


@pytest.fixture(scope="module")
def shadowed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compiled_project(tmp_path_factory.mktemp("shadow"), shadow_specs)


def _rules(model_dir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((model_dir / RULES).read_text())
    return loaded


def _alerts(model_dir: Path) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in _rules(model_dir)["groups"] for r in g["rules"] if "alert" in r}


def test_rules_only_where_a_candidate_is_shadowed(shadowed: Path) -> None:
    for model_dir in (shadowed / CREDIT, shadowed / LOAN):
        groups = [g["name"] for g in _rules(model_dir)["groups"]]
        assert groups[-2:] == [
            f"modelops-{model_dir.name}-shadow-recording",
            f"modelops-{model_dir.name}-shadow-alerts",
        ]
        assert set(_alerts(model_dir)) >= SHADOW_ALERTS
    # staging rolls the candidate out straight; the bundled specs have no candidate at all
    for model_dir in [shadowed / STAGING_CREDIT, *MODEL_DIRS]:
        assert not SHADOW_ALERTS & set(_alerts(model_dir)), model_dir
        assert "shadow" not in (model_dir / RULES).read_text()


def _shadow_cases(model_dir: Path, rules: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """promtool over `rules` with the model's generated shadow cases (the other alerts' cases
    are the bundled specs' ones, which tests/test_monitoring.py runs)."""
    (tmp_path / RULES).write_text(yaml.safe_dump(rules))
    tests = yaml.safe_load((model_dir / "rules.test.yaml").read_text())
    tests["tests"] = [c for c in tests["tests"] if c["alert_rule_test"][0]["alertname"] in SHADOW_ALERTS]
    (tmp_path / "rules.test.yaml").write_text(yaml.safe_dump(tests))
    check = run_promtool("check", "rules", RULES, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    return run_promtool("test", "rules", "rules.test.yaml", cwd=tmp_path)


@pytest.mark.parametrize("model", [CREDIT, LOAN], ids=str)
def test_promtool_checks_and_tests_the_compiled_rules(shadowed: Path, model: Path, tmp_path: Path) -> None:
    check = run_promtool("check", "rules", RULES, cwd=shadowed / model)
    assert check.returncode == 0, check.stdout + check.stderr
    test = _shadow_cases(shadowed / model, _rules(shadowed / model), tmp_path)
    assert test.returncode == 0, test.stdout + test.stderr
    tests = yaml.safe_load((tmp_path / "rules.test.yaml").read_text())["tests"]
    for alert in SHADOW_ALERTS:
        cases = [c for c in tests if c["alert_rule_test"][0]["alertname"] == alert]
        assert any(c["alert_rule_test"][0]["exp_alerts"] for c in cases), alert
        assert any(not c["alert_rule_test"][0]["exp_alerts"] for c in cases), alert
    (few,) = [c for c in tests if "no verdict" in c["name"]]
    assert few["promql_expr_test"][0]["exp_samples"] == []


def test_alerts_read_like_the_others_and_give_the_numbers(shadowed: Path) -> None:
    credit = _alerts(shadowed / CREDIT)["ModelShadowDisagreement"]
    assert credit["labels"]["severity"] == "warning" and credit["labels"]["team"] == "risk-analytics"
    assert credit["labels"]["pager"] == "risk-oncall" and credit["for"] == "15m"
    assert credit["annotations"]["runbook_url"] == "https://runbooks.acme.dev/credit-default"
    assert credit["annotations"]["summary"] == (
        "credit-default (production): shadow candidate 1.5.0 disagrees with 1.4.0"
    )
    text = credit["annotations"]["description"]
    for words in ("last 1h", "at least 100 compared rows", "another class than 1.4.0", "more than 5%"):
        assert words in text, words
    assert "rows it failed to score count as disagreeing" in text
    loan = _alerts(shadowed / LOAN)
    text = loan["ModelShadowDisagreement"]["annotations"]["description"]
    for words in (
        "last 6h",
        "at least 500 compared rows",
        "more than 2.5 away from 2.1.0's",
        "more than 20%",
    ):
        assert words in text, words
    assert "[6h]" in loan["ModelShadowDropped"]["expr"]
    dropped = loan["ModelShadowDropped"]["annotations"]["description"]
    assert "more than 10% of the requests 2.1.0 answered" in dropped and "(256 requests per pod)" in dropped


def test_rules_use_only_series_of_the_contract(shadowed: Path) -> None:
    known = contract.series_names() | contract.recorded_names(tuple(w.text for w in SLI_WINDOWS))
    for model in (CREDIT, LOAN):
        used = {
            name
            for group in _rules(shadowed / model)["groups"]
            if "shadow" in group["name"]
            for rule in group["rules"]
            for name in _selectors(rule["expr"])
        }
        assert contract.SHADOW_COMPARISONS.total in used and contract.SHADOW_DROPPED.total in used
        assert used <= known, used - known


LABELS = {"model": "credit-default", "namespace": "ml-production"}
RECORDED = {**LABELS, "environment": "production"}


def _counter(pod: str, per_minute: float, minutes: int, **labels: str) -> dict[str, str]:
    series = {**LABELS, "version": "1.4.0", "pod": pod, **labels}
    return {
        "series": "modelops_shadow_comparisons_total" + matchers(series),
        "values": f"0+{per_minute!r}x{minutes}",
    }


def _scenario(
    shadowed: Path, tmp_path: Path, tests: list[dict[str, Any]]
) -> subprocess.CompletedProcess[str]:
    shutil.copy(shadowed / CREDIT / RULES, tmp_path)
    (tmp_path / "t.yaml").write_text(
        yaml.safe_dump({"rule_files": [RULES], "evaluation_interval": "1m", "tests": tests})
    )
    return run_promtool("test", "rules", "t.yaml", cwd=tmp_path)


def test_two_pods_errors_and_another_candidate(shadowed: Path, tmp_path: Path) -> None:
    """The ratio sums both pods, counts the candidate's errors as disagreeing, and ignores
    the rows of a candidate the spec no longer shadows; it fires once it is over the limit."""
    outcomes = {"agree": 46.0, "disagree": 2.0, "error": 2.0}  # per pod and minute: 8% bad
    series = [
        _counter(pod, rate, 90, candidate="1.5.0", outcome=outcome)
        for pod in ("a", "b")
        for outcome, rate in outcomes.items()
    ]
    series.append(_counter("a", 1000.0, 90, candidate="1.3.0", outcome="agree"))
    rules = yaml.safe_load((shadowed / CREDIT / RULES).read_text())
    (rule,) = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "ModelShadowDisagreement"]
    labels = {**RECORDED, **rule["labels"]}
    fired = {
        "exp_labels": labels,
        "exp_annotations": {k: expand(v, labels) for k, v in rule["annotations"].items()},
    }
    ratio = f"modelops:shadow_disagreement:ratio{matchers(RECORDED)}"
    result = _scenario(
        shadowed,
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": "80m", "alertname": "ModelShadowDisagreement", "exp_alerts": [fired]},
                ],
                "promql_expr_test": [
                    {
                        "expr": f"abs({ratio} - 0.08) < bool 0.0008",
                        "eval_time": "80m",
                        "exp_samples": [{"labels": matchers(RECORDED), "value": 1}],
                    }
                ],
            }
        ],
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_row_disagreeing_under_the_guard_is_no_verdict(shadowed: Path, tmp_path: Path) -> None:
    series = [_counter(pod, 0.5, 90, candidate="1.5.0", outcome="disagree") for pod in ("a", "b")]
    ratio = f"modelops:shadow_disagreement:ratio{matchers(RECORDED)}"
    result = _scenario(
        shadowed,
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": series,  # 60 rows an hour, under the guard of 100
                "alert_rule_test": [
                    {"eval_time": "90m", "alertname": "ModelShadowDisagreement", "exp_alerts": []}
                ],
                "promql_expr_test": [{"expr": ratio, "eval_time": "90m", "exp_samples": []}],
            }
        ],
    )
    assert result.returncode == 0, result.stdout + result.stderr


MUTATIONS = [
    ("ModelShadowDisagreement", "ModelShadowDisagreement", "> 0.05", "> 0.5"),
    (
        "ModelShadowDisagreement",
        "modelops:shadow_disagreement:ratio",
        'outcome!="agree"',
        'outcome="disagree"',
    ),
    ("ModelShadowDisagreement", "modelops:shadow_disagreement:ratio", ">= 100", ">= 1"),
    (
        "ModelShadowDisagreement",
        "modelops:shadow_comparisons:increase",
        'candidate="1.5.0"',
        'candidate="1.4.0"',
    ),
    ("ModelShadowDropped", "ModelShadowDropped", "> 0.1", "> 0.5"),
]


@pytest.mark.parametrize(
    ("alert", "rule", "old", "new"), MUTATIONS, ids=[f"{m[0]} {m[3]}" for m in MUTATIONS]
)
def test_a_broken_rule_fails_the_generated_tests(
    shadowed: Path, tmp_path: Path, alert: str, rule: str, old: str, new: str
) -> None:
    rules = _rules(shadowed / CREDIT)
    (target,) = [r for g in rules["groups"] for r in g["rules"] if rule in (r.get("record"), r.get("alert"))]
    assert old in target["expr"]
    target["expr"] = target["expr"].replace(old, new)
    result = _shadow_cases(shadowed / CREDIT, rules, tmp_path)
    assert result.returncode != 0
    assert f"alertname: {alert}" in result.stdout + result.stderr
